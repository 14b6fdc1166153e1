package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orderstore/orders/eventstore"
	"github.com/orderstore/orders/eventstore/esdbnode/auth"
	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// userAdmin is what orders node users does to a node's users: offline on a
// data directory (the node stopped), or over a running node's HTTP users API.
type userAdmin interface {
	list(ctx context.Context) ([]auth.User, error)
	add(ctx context.Context, u auth.User, password string) error
	passwd(ctx context.Context, login, password string) error
	setDisabled(ctx context.Context, login string, disabled bool) error
	remove(ctx context.Context, login string) error
}

// nodeUsersCmd is "orders node users ...".
func (a *app) nodeUsersCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage a secure node's users: offline with --data (node stopped), or a running node named by --esdb",
		Long: "Manage the users of a secure node. Without --esdb/ORDERS_ESDB the data directory (--data) is changed\n" +
			"directly, and the node must be stopped. With --esdb the running node named there is changed through its\n" +
			"HTTP users API, as the admin user of the connection string (esdb://admin:PASSWORD@host:2113?tls=true&tlsCAFile=ca.crt).",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data", "./data", "data directory of the stopped node")
	// with runs fn against the chosen target and closes it.
	with := func(cmd *cobra.Command, fn func(ctx context.Context, ua userAdmin) error) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
		defer cancel()
		if a.esdbExplicit(cmd) {
			h, err := eventstore.HTTPFor(a.esdbURL)
			if err != nil {
				return err
			}
			return fn(ctx, &httpUsers{h: h})
		}
		log, err := eventlog.Open(dataDir, eventlog.Options{Now: a.now})
		if err != nil {
			return fmt.Errorf("open %s (if the node is running, name it with --esdb instead): %w", dataDir, err)
		}
		u := auth.New(log)
		err = u.EnsureDefaults(ctx)
		if err == nil {
			err = fn(ctx, &offlineUsers{u: u})
		}
		return errors.Join(err, log.Close())
	}
	var password, fullName, groups string
	passwordFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&password, "password", "", "the password (required)")
	}
	needPassword := func() error {
		if password == "" {
			return usageErrorf("--password is required")
		}
		return nil
	}
	list := &cobra.Command{
		Use: "list", Short: "List the users", Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(ctx context.Context, ua userAdmin) error {
				users, err := ua.list(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(users)
				}
				for _, u := range users {
					state := ""
					if u.Disabled {
						state = " (disabled)"
					}
					if _, err := fmt.Fprintf(a.stdout, "%s\t%s\t%s%s\n", u.LoginName, strings.Join(u.Groups, ","), u.FullName, state); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	add := &cobra.Command{
		Use: "add NAME --password P [--full-name F] [--groups G1,G2]", Short: "Add a user", Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needPassword(); err != nil {
				return err
			}
			var gs []string
			if groups != "" {
				gs = strings.Split(groups, ",")
			}
			return with(cmd, func(ctx context.Context, ua userAdmin) error {
				return a.done(ua.add(ctx, auth.User{LoginName: args[0], FullName: fullName, Groups: gs}, password), "added", args[0])
			})
		},
	}
	passwordFlag(add)
	add.Flags().StringVar(&fullName, "full-name", "", "full name")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups, e.g. $admins or $ops")
	passwd := &cobra.Command{
		Use: "passwd NAME --password P", Short: "Set a user's password", Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needPassword(); err != nil {
				return err
			}
			return with(cmd, func(ctx context.Context, ua userAdmin) error {
				return a.done(ua.passwd(ctx, args[0], password), "password set for", args[0])
			})
		},
	}
	passwordFlag(passwd)
	toggle := func(name string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: name + " NAME", Short: strings.ToUpper(name[:1]) + name[1:] + " a user", Args: exactArgs("NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return with(cmd, func(ctx context.Context, ua userAdmin) error {
					return a.done(ua.setDisabled(ctx, args[0], disabled), name+"d", args[0])
				})
			},
		}
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user", Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, ua userAdmin) error {
				return a.done(ua.remove(ctx, args[0]), "deleted", args[0])
			})
		},
	}
	cmd.AddCommand(list, add, passwd, toggle("disable", true), toggle("enable", false), del)
	return cmd
}

// done prints "orders: user NAME WHAT" after a successful change.
func (a *app) done(err error, what, login string) error {
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]string{"user": login, "result": what})
	}
	_, err = fmt.Fprintf(a.stdout, "orders: user %s %s\n", login, what)
	return err
}

// offlineUsers changes a stopped node's data directory.
type offlineUsers struct{ u *auth.Users }

func (o *offlineUsers) list(ctx context.Context) ([]auth.User, error) { return o.u.List(ctx) }
func (o *offlineUsers) add(ctx context.Context, u auth.User, pw string) error {
	return o.u.Create(ctx, u, pw)
}
func (o *offlineUsers) passwd(ctx context.Context, login, pw string) error {
	return o.u.SetPassword(ctx, login, pw)
}
func (o *offlineUsers) setDisabled(ctx context.Context, login string, d bool) error {
	return o.u.SetDisabled(ctx, login, d)
}
func (o *offlineUsers) remove(ctx context.Context, login string) error { return o.u.Delete(ctx, login) }

// httpUsers changes a running node through its HTTP users API.
type httpUsers struct{ h *eventstore.NodeHTTP }

// errUsersAPI is a refusal by the node's users API.
var errUsersAPI = errors.New("node refused")

func (c *httpUsers) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.h.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.h.Username != "" {
		req.SetBasicAuth(c.h.Username, c.h.Password)
	}
	resp, err := c.h.Client.Do(req)
	if err != nil {
		return &unreachableError{addr: strings.TrimPrefix(strings.TrimPrefix(c.h.BaseURL, "https://"), "http://"), err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %s %s: 401: the connection string's user must be an administrator", errUsersAPI, method, path)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s", auth.ErrUserNotFound, e.Error)
		case http.StatusConflict:
			return fmt.Errorf("%w: %s", auth.ErrUserExists, e.Error)
		}
		return fmt.Errorf("%w: %s %s: %s %s", errUsersAPI, method, path, resp.Status, e.Error)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *httpUsers) list(ctx context.Context) ([]auth.User, error) {
	var resp struct {
		Data []struct {
			LoginName string   `json:"loginName"`
			FullName  string   `json:"fullName"`
			Groups    []string `json:"groups"`
			Disabled  bool     `json:"disabled"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodGet, "/users/", nil, &resp); err != nil {
		return nil, err
	}
	out := make([]auth.User, 0, len(resp.Data))
	for _, u := range resp.Data {
		out = append(out, auth.User{LoginName: u.LoginName, FullName: u.FullName, Groups: u.Groups, Disabled: u.Disabled})
	}
	return out, nil
}

func (c *httpUsers) add(ctx context.Context, u auth.User, pw string) error {
	return c.call(ctx, http.MethodPost, "/users/", map[string]any{
		"loginName": u.LoginName, "fullName": u.FullName, "groups": u.Groups, "password": pw,
	}, nil)
}

func (c *httpUsers) passwd(ctx context.Context, login, pw string) error {
	return c.call(ctx, http.MethodPost, "/users/"+url.PathEscape(login)+"/command/reset-password", map[string]string{"newPassword": pw}, nil)
}

func (c *httpUsers) setDisabled(ctx context.Context, login string, d bool) error {
	cmd := "enable"
	if d {
		cmd = "disable"
	}
	return c.call(ctx, http.MethodPost, "/users/"+url.PathEscape(login)+"/command/"+cmd, nil, nil)
}

func (c *httpUsers) remove(ctx context.Context, login string) error {
	return c.call(ctx, http.MethodDelete, "/users/"+url.PathEscape(login), nil, nil)
}

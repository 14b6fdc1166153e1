package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// Stream and event names of KurrentDB's user store.
const (
	UserStreamPrefix  = "$user-"
	UsersStream       = "$users"
	eventUserCreated  = "$UserCreated"
	eventUserUpdated  = "$UserUpdated"
	eventUser         = "$User"
	eventMetadata     = "$metadata"
	DefaultPassword   = "changeit"
	userStreamACLJSON = `{"$acl":{"$w":"$admins","$d":"$admins","$mw":"$admins"}}`
)

// MaxHashing bounds the password hashes computed at once.
const MaxHashing = 2

// Log is what the user store needs of the node's log (*eventlog.Log).
type Log interface {
	Stream(ctx context.Context, stream string) (eventlog.StreamState, error)
	ReadStream(ctx context.Context, stream string, dir eventlog.Direction, from uint64, limit int) ([]eventlog.Record, error)
	Append(ctx context.Context, stream string, exp eventlog.Expected, events []eventlog.Proposed) (eventlog.AppendResult, error)
	Delete(ctx context.Context, stream string, exp eventlog.Expected) (uint64, error)
}

var _ Log = (*eventlog.Log)(nil)

// User is a user as listed and managed (never its password).
type User struct {
	LoginName string
	FullName  string
	Groups    []string
	Disabled  bool
}

// userData is the JSON of $UserCreated / $UserUpdated, KurrentDB's shape.
type userData struct {
	LoginName string   `json:"loginName"`
	FullName  string   `json:"fullName,omitempty"`
	Groups    []string `json:"groups"`
	Hash      string   `json:"hash"`
	Salt      string   `json:"salt"`
	Disabled  bool     `json:"disabled,omitempty"`
}

// Users is the user store, authenticator and access checker of a secure
// node. Create it with New.
type Users struct {
	log  Log
	sem  chan struct{}
	hkey []byte // per-process key of the verified-password cache

	mu    sync.Mutex
	cache map[string]verified
}

// verified is a login whose password was checked against a version of its
// stream.
type verified struct {
	rev    int64
	digest []byte
	p      Principal
}

// New returns the store over log.
func New(log Log) *Users {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand does not fail on supported platforms
	return &Users{log: log, sem: make(chan struct{}, MaxHashing), hkey: k, cache: map[string]verified{}}
}

func userStream(login string) string { return UserStreamPrefix + login }

// validLogin: non-empty, no control characters, no colon (Basic splits on it).
func validLogin(login string) error {
	if login == "" || strings.ContainsAny(login, ":") || strings.ContainsFunc(login, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: login name %q", ErrInvalidUser, login)
	}
	return nil
}

// load reads a user's last event; ErrUserNotFound if none or deleted.
func (u *Users) load(ctx context.Context, login string) (userData, int64, error) {
	st, err := u.log.Stream(ctx, userStream(login))
	if err != nil {
		return userData{}, 0, err
	}
	if st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return userData{}, 0, ErrUserNotFound
	}
	return u.loadAt(ctx, login, st.LastRevision)
}

func (u *Users) loadAt(ctx context.Context, login string, rev int64) (userData, int64, error) {
	recs, err := u.log.ReadStream(ctx, userStream(login), eventlog.Backwards, ^uint64(0), 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return userData{}, 0, ErrUserNotFound
	}
	if err != nil {
		return userData{}, 0, err
	}
	var d userData
	if err := json.Unmarshal(recs[0].Data, &d); err != nil {
		return userData{}, 0, fmt.Errorf("auth: user %q: %w", login, err)
	}
	return d, int64(recs[0].Revision), nil
}

func (u *Users) digest(login, password string) []byte {
	m := hmac.New(sha256.New, u.hkey)
	m.Write([]byte(login))
	m.Write([]byte{0})
	m.Write([]byte(password))
	return m.Sum(nil)
}

// Authenticate checks login and password. It fails with ErrUnauthenticated
// for an unknown, deleted or disabled user or a wrong password.
func (u *Users) Authenticate(ctx context.Context, login, password string) (Principal, error) {
	st, err := u.log.Stream(ctx, userStream(login))
	if err != nil {
		return Principal{}, err
	}
	if st.LastRevision < 0 || st.SoftDeleted || st.Tombstoned {
		return Principal{}, ErrUnauthenticated
	}
	dg := u.digest(login, password)
	u.mu.Lock()
	c, ok := u.cache[login]
	u.mu.Unlock()
	if ok && c.rev == st.LastRevision && hmac.Equal(c.digest, dg) {
		return c.p, nil
	}
	d, rev, err := u.loadAt(ctx, login, st.LastRevision)
	if errors.Is(err, ErrUserNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if d.Disabled {
		return Principal{}, ErrUnauthenticated
	}
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		return Principal{}, ctx.Err()
	}
	good, err := verifyPassword(d.Hash, password)
	<-u.sem
	if err != nil {
		return Principal{}, fmt.Errorf("auth: user %q: %w", login, err)
	}
	if !good {
		return Principal{}, ErrUnauthenticated
	}
	p := Principal{Name: d.LoginName, Groups: slices.Clone(d.Groups)}
	u.mu.Lock()
	u.cache[login] = verified{rev: rev, digest: dg, p: p}
	u.mu.Unlock()
	return p, nil
}

// EnsureDefaults creates admin ($admins) and ops ($ops) with password
// "changeit" unless they exist, as KurrentDB does on first start.
func (u *Users) EnsureDefaults(ctx context.Context) error {
	defaults := []User{
		{LoginName: "admin", FullName: "KurrentDB Administrator", Groups: []string{GroupAdmins}},
		{LoginName: "ops", FullName: "KurrentDB Operations", Groups: []string{GroupOps}},
	}
	for _, d := range defaults {
		st, err := u.log.Stream(ctx, userStream(d.LoginName))
		if err != nil {
			return err
		}
		if st.LastRevision >= 0 && !st.SoftDeleted && !st.Tombstoned {
			continue
		}
		if err := u.Create(ctx, d, DefaultPassword); err != nil && !errors.Is(err, ErrUserExists) {
			return err
		}
	}
	return nil
}

// Create adds a user; ErrUserExists if one of that name exists.
func (u *Users) Create(ctx context.Context, usr User, password string) error {
	if err := validLogin(usr.LoginName); err != nil {
		return err
	}
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalidUser)
	}
	stream := userStream(usr.LoginName)
	st, err := u.log.Stream(ctx, stream)
	if err != nil {
		return err
	}
	if st.Tombstoned {
		return fmt.Errorf("%w: %q was deleted for good", ErrUserExists, usr.LoginName)
	}
	if st.LastRevision >= 0 && !st.SoftDeleted {
		return fmt.Errorf("%w: %q", ErrUserExists, usr.LoginName)
	}
	phc, salt, err := hashPassword(password)
	if err != nil {
		return err
	}
	// The metadata first: on a deleted user's stream it also un-deletes it
	// (keeping its old events hidden).
	if _, err := u.log.Append(ctx, "$$"+stream, eventlog.Expected{Kind: eventlog.ExpectAny},
		[]eventlog.Proposed{{ID: uuid.New(), Type: eventMetadata, IsJSON: true, Data: []byte(userStreamACLJSON)}}); err != nil {
		return err
	}
	d := userData{LoginName: usr.LoginName, FullName: usr.FullName, Groups: groupsOrEmpty(usr.Groups), Hash: phc, Salt: salt}
	if err := u.appendUser(ctx, stream, eventUserCreated, d, eventlog.Expected{Kind: eventlog.ExpectAny}); err != nil {
		return err
	}
	_, err = u.log.Append(ctx, UsersStream, eventlog.Expected{Kind: eventlog.ExpectAny},
		[]eventlog.Proposed{{ID: uuid.New(), Type: eventUser, Data: []byte(usr.LoginName)}})
	return err
}

func groupsOrEmpty(g []string) []string {
	if g == nil {
		return []string{}
	}
	return slices.Clone(g)
}

func (u *Users) appendUser(ctx context.Context, stream, typ string, d userData, exp eventlog.Expected) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = u.log.Append(ctx, stream, exp, []eventlog.Proposed{{ID: uuid.New(), Type: typ, IsJSON: true, Data: data}})
	var wev *eventlog.WrongExpectedVersionError
	if errors.As(err, &wev) {
		return fmt.Errorf("auth: user changed meanwhile, try again: %w", err)
	}
	return err
}

// update rewrites a user with change applied.
func (u *Users) update(ctx context.Context, login string, change func(*userData) error) error {
	d, rev, err := u.load(ctx, login)
	if err != nil {
		return fmt.Errorf("%w: %q", err, login)
	}
	if err := change(&d); err != nil {
		return err
	}
	return u.appendUser(ctx, userStream(login), eventUserUpdated, d,
		eventlog.Expected{Kind: eventlog.ExpectRevision, Revision: uint64(rev)})
}

// SetPassword replaces a user's password.
func (u *Users) SetPassword(ctx context.Context, login, password string) error {
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalidUser)
	}
	return u.update(ctx, login, func(d *userData) error {
		phc, salt, err := hashPassword(password)
		d.Hash, d.Salt = phc, salt
		return err
	})
}

// SetDisabled disables or enables a user.
func (u *Users) SetDisabled(ctx context.Context, login string, disabled bool) error {
	return u.update(ctx, login, func(d *userData) error {
		d.Disabled = disabled
		return nil
	})
}

// Delete removes a user (soft-deletes its stream).
func (u *Users) Delete(ctx context.Context, login string) error {
	if _, _, err := u.load(ctx, login); err != nil {
		return fmt.Errorf("%w: %q", err, login)
	}
	_, err := u.log.Delete(ctx, userStream(login), eventlog.Expected{Kind: eventlog.ExpectAny})
	return err
}

// Get returns one user.
func (u *Users) Get(ctx context.Context, login string) (User, error) {
	d, _, err := u.load(ctx, login)
	if err != nil {
		return User{}, fmt.Errorf("%w: %q", err, login)
	}
	return User{LoginName: d.LoginName, FullName: d.FullName, Groups: d.Groups, Disabled: d.Disabled}, nil
}

// List returns every existing user, in order of creation.
func (u *Users) List(ctx context.Context) ([]User, error) {
	var names []string
	seen := map[string]bool{}
	from := uint64(0)
	for {
		recs, err := u.log.ReadStream(ctx, UsersStream, eventlog.Forwards, from, 256)
		if errors.Is(err, eventlog.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			name := string(r.Data)
			var seeded struct {
				LoginName string `json:"loginName"`
			}
			if json.Unmarshal(r.Data, &seeded) == nil && seeded.LoginName != "" {
				name = seeded.LoginName
			}
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
			from = r.Revision + 1
		}
		if len(recs) < 256 {
			break
		}
	}
	var out []User
	for _, n := range names {
		usr, err := u.Get(ctx, n)
		if errors.Is(err, ErrUserNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, usr)
	}
	return out, nil
}

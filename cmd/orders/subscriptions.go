package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/spf13/cobra"

	"github.com/orderstore/orders/eventstore"
)

// errGroupNotFound: no persistent subscription group of that name on that stream.
// (To move to errors.go with the other command errors.)
var errGroupNotFound = errors.New("persistent subscription group not found")

// allStream is how the commands name $all.
const allStream = "$all"

func (a *app) subscriptionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscriptions list|info NAME|replay-parked NAME",
		Short: "Inspect persistent subscription groups and replay their parked messages",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown subscriptions command %q (want list, info or replay-parked)", args[0])
			}
			return usageErrorf("missing subscriptions command (want list, info or replay-parked)")
		},
	}
	cmd.AddCommand(a.subscriptionsListCmd(), a.subscriptionsInfoCmd(), a.subscriptionsReplayCmd())
	return cmd
}

// withClient connects for one admin command, within the command's time limit, and makes sure
// the node answers first, so an unreachable node is reported as such.
func (a *app) withClient(ctx context.Context, f func(context.Context, *esdb.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	client, err := eventstore.Connect(a.esdbURL)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := eventstore.Ping(ctx, client); err != nil {
		if errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return &unreachableError{addr: eventstore.Address(a.esdbURL), err: err}
		}
		return err
	}
	return f(ctx, client)
}

// subscriptionError translates an error of the client's persistent-subscription admin calls.
// group and stream name what was asked for.
func subscriptionError(ctx context.Context, op, stream, group string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	err = eventstore.TranslateGroupError(ctx, op, err)
	if errors.Is(err, eventstore.ErrGroupNotFound) {
		return &groupNotFoundError{group: group, stream: stream}
	}
	return err
}

// subscriptionJSON is one group as list and info print it.
type subscriptionJSON struct {
	Source             string           `json:"source"`
	Group              string           `json:"group"`
	Status             string           `json:"status"`
	Connections        int              `json:"connections"`
	InFlight           int64            `json:"inFlight"`
	Parked             int64            `json:"parked"`
	Outstanding        int64            `json:"outstanding"`
	TotalItems         int64            `json:"totalItems"`
	LastCheckpointed   string           `json:"lastCheckpointed,omitempty"`
	LastKnown          string           `json:"lastKnown,omitempty"`
	ReadBuffer         int64            `json:"readBuffer"`
	LiveBuffer         int64            `json:"liveBuffer"`
	RetryBuffer        int64            `json:"retryBuffer"`
	Strategy           string           `json:"strategy,omitempty"`
	MaxRetryCount      int32            `json:"maxRetryCount"`
	MessageTimeoutMS   int32            `json:"messageTimeoutMs"`
	ConnectionsDetails []connectionJSON `json:"connectionDetails,omitempty"`
}

type connectionJSON struct {
	From      string `json:"from"`
	Name      string `json:"name,omitempty"`
	InFlight  int64  `json:"inFlight"`
	Processed int64  `json:"processed"`
	Slots     int64  `json:"availableSlots"`
}

// position formats a checkpoint: a commit position for $all groups, a revision otherwise.
func position(p *esdb.Position, rev *uint64) string {
	switch {
	case p != nil:
		return "C:" + strconv.FormatUint(p.Commit, 10) + "/P:" + strconv.FormatUint(p.Prepare, 10)
	case rev != nil:
		return strconv.FormatUint(*rev, 10)
	}
	return ""
}

func toJSON(info *esdb.PersistentSubscriptionInfo, details bool) subscriptionJSON {
	out := subscriptionJSON{
		Source:      info.EventSource,
		Group:       info.GroupName,
		Status:      info.Status,
		Connections: len(info.Connections),
	}
	if st := info.Stats; st != nil {
		out.InFlight = st.TotalInFlightMessages
		out.Parked = st.ParkedMessagesCount
		out.Outstanding = st.OutstandingMessagesCount
		out.TotalItems = st.TotalItems
		out.LastCheckpointed = position(st.LastCheckpointedPosition, st.LastCheckpointedEventRevision)
		out.LastKnown = position(st.LastKnownPosition, st.LastKnownEventRevision)
		out.ReadBuffer, out.LiveBuffer, out.RetryBuffer = st.ReadBufferCount, st.LiveBufferCount, st.RetryBufferCount
	}
	if s := info.Settings; s != nil {
		out.Strategy = string(s.ConsumerStrategyName)
		out.MaxRetryCount = s.MaxRetryCount
		out.MessageTimeoutMS = s.MessageTimeout
	}
	if details {
		for _, c := range info.Connections {
			out.ConnectionsDetails = append(out.ConnectionsDetails, connectionJSON{
				From: c.From, Name: c.ConnectionName, InFlight: c.InFlightMessages,
				Processed: c.TotalItemsProcessed, Slots: c.AvailableSlots,
			})
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) subscriptionsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every persistent subscription group with its in-flight and parked counts and positions",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var infos []esdb.PersistentSubscriptionInfo
			err := a.withClient(cmd.Context(), func(ctx context.Context, client *esdb.Client) error {
				var err error
				infos, err = client.ListAllPersistentSubscriptions(ctx, esdb.ListPersistentSubscriptionsOptions{})
				err = subscriptionError(ctx, "list persistent subscriptions", "", "", err)
				if errors.Is(err, errGroupNotFound) {
					// A node with no group at all answers NotFound.
					infos, err = nil, nil
				}
				return err
			})
			if err != nil {
				return err
			}
			out := make([]subscriptionJSON, 0, len(infos))
			for i := range infos {
				out = append(out, toJSON(&infos[i], false))
			}
			if a.jsonOut {
				return a.printJSON(struct {
					Subscriptions []subscriptionJSON `json:"subscriptions"`
				}{out})
			}
			return printList(a.stdout, out)
		},
	}
}

func printList(w io.Writer, subs []subscriptionJSON) error {
	if len(subs) == 0 {
		_, err := fmt.Fprintln(w, "no persistent subscription groups")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tGROUP\tSTATUS\tCONNECTIONS\tIN-FLIGHT\tPARKED\tCHECKPOINT\tLAST KNOWN")
	for _, s := range subs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Source, s.Group, s.Status, s.Connections,
			s.InFlight, s.Parked, orDash(s.LastCheckpointed), orDash(s.LastKnown))
	}
	return tw.Flush()
}

// getInfo reads one group; stream "$all" means the $all group.
func getInfo(ctx context.Context, client *esdb.Client, stream, group string) (*esdb.PersistentSubscriptionInfo, error) {
	var info *esdb.PersistentSubscriptionInfo
	var err error
	if stream == allStream {
		info, err = client.GetPersistentSubscriptionInfoToAll(ctx, group, esdb.GetPersistentSubscriptionOptions{})
	} else {
		info, err = client.GetPersistentSubscriptionInfo(ctx, stream, group, esdb.GetPersistentSubscriptionOptions{})
	}
	return info, subscriptionError(ctx, "get persistent subscription info", stream, group, err)
}

func checkGroupArgs(stream, group string) error {
	if strings.TrimSpace(group) == "" {
		return usageErrorf("empty group name")
	}
	if strings.TrimSpace(stream) == "" {
		return usageErrorf("empty --stream")
	}
	return nil
}

func (a *app) subscriptionsInfoCmd() *cobra.Command {
	var stream string
	cmd := &cobra.Command{
		Use:   "info NAME [--stream STREAM]",
		Short: "Show one persistent subscription group (on $all unless --stream names a stream)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkGroupArgs(stream, args[0]); err != nil {
				return err
			}
			var info *esdb.PersistentSubscriptionInfo
			err := a.withClient(cmd.Context(), func(ctx context.Context, client *esdb.Client) error {
				var err error
				info, err = getInfo(ctx, client, stream, args[0])
				return err
			})
			if err != nil {
				return err
			}
			out := toJSON(info, true)
			if a.jsonOut {
				return a.printJSON(out)
			}
			return printInfo(a.stdout, out)
		},
	}
	cmd.Flags().StringVar(&stream, "stream", allStream, "the group's stream")
	return cmd
}

func printInfo(w io.Writer, s subscriptionJSON) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"group", s.Group},
		{"source", s.Source},
		{"status", s.Status},
		{"strategy", orDash(s.Strategy)},
		{"max retry count", strconv.Itoa(int(s.MaxRetryCount))},
		{"message timeout", strconv.Itoa(int(s.MessageTimeoutMS)) + " ms"},
		{"connections", strconv.Itoa(s.Connections)},
		{"in flight", strconv.FormatInt(s.InFlight, 10)},
		{"outstanding", strconv.FormatInt(s.Outstanding, 10)},
		{"parked", strconv.FormatInt(s.Parked, 10)},
		{"total items", strconv.FormatInt(s.TotalItems, 10)},
		{"buffers (read/live/retry)", fmt.Sprintf("%d/%d/%d", s.ReadBuffer, s.LiveBuffer, s.RetryBuffer)},
		{"last checkpointed", orDash(s.LastCheckpointed)},
		{"last known", orDash(s.LastKnown)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	for _, c := range s.ConnectionsDetails {
		fmt.Fprintf(tw, "connection:\t%s %s in-flight=%d processed=%d slots=%d\n", c.From, c.Name, c.InFlight, c.Processed, c.Slots)
	}
	return tw.Flush()
}

func (a *app) subscriptionsReplayCmd() *cobra.Command {
	var stream string
	var stopAt int
	cmd := &cobra.Command{
		Use:   "replay-parked NAME [--stop-at N] [--stream STREAM]",
		Short: "Bring a group's parked messages back to its consumers",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if err := checkGroupArgs(stream, group); err != nil {
				return err
			}
			if cmd.Flags().Changed("stop-at") && stopAt <= 0 {
				return usageErrorf("--stop-at must be positive, got %d", stopAt)
			}
			var parked int64
			err := a.withClient(cmd.Context(), func(ctx context.Context, client *esdb.Client) error {
				info, err := getInfo(ctx, client, stream, group)
				if err != nil {
					return err
				}
				if info.Stats != nil {
					parked = info.Stats.ParkedMessagesCount
				}
				opts := esdb.ReplayParkedMessagesOptions{StopAt: stopAt}
				if stream == allStream {
					err = client.ReplayParkedMessagesToAll(ctx, group, opts)
				} else {
					err = client.ReplayParkedMessages(ctx, stream, group, opts)
				}
				return subscriptionError(ctx, "replay parked messages", stream, group, err)
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					Source string `json:"source"`
					Group  string `json:"group"`
					Parked int64  `json:"parked"`
					StopAt int    `json:"stopAt,omitempty"`
				}{stream, group, parked, stopAt})
			}
			limit := ""
			if stopAt > 0 {
				limit = fmt.Sprintf(" (stopping at %d)", stopAt)
			}
			_, err = fmt.Fprintf(a.stdout, "replaying %d parked message(s) of group %s on %s%s\n", parked, group, stream, limit)
			return err
		},
	}
	cmd.Flags().StringVar(&stream, "stream", allStream, "the group's stream")
	cmd.Flags().IntVar(&stopAt, "stop-at", 0, "replay up to this many parked messages (default: all)")
	return cmd
}

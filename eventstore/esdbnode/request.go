package esdbnode

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// This file translates requests into the log's terms. Every function is pure
// (no I/O) and total: garbage in gives an error wrapping ErrInvalidRequest
// (or ErrMissingMetadata), never a panic. The fuzz tests hold it to that.

const (
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
	defaultWindow     = 32 // EventStoreDB's filter search window for window=count
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// streamName extracts a non-empty stream name.
func streamName(id *shared.StreamIdentifier) (string, error) {
	if id == nil || len(id.StreamName) == 0 {
		return "", invalidf("stream name required")
	}
	return string(id.StreamName), nil
}

// parseUUID accepts both UUID forms: structured (the big-endian int64 halves
// of the RFC 4122 bytes) and string.
func parseUUID(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		if v.Structured == nil {
			return uuid.UUID{}, invalidf("empty structured uuid")
		}
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.MostSignificantBits))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.LeastSignificantBits))
		return id, nil
	case *shared.UUID_String_:
		id, err := uuid.Parse(v.String_)
		if err != nil {
			return uuid.UUID{}, invalidf("event id: %v", err)
		}
		return id, nil
	default:
		return uuid.UUID{}, invalidf("event id required")
	}
}

// uuidProto encodes id in the form the reader asked for.
func uuidProto(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

// appendTarget is the stream and expected state of an append.
type appendTarget struct {
	stream   string
	expected eventlog.Expected
}

// appendOptions translates the first message of an Append call, which must
// be the options.
func appendOptions(req *streams.AppendReq) (appendTarget, error) {
	opts := req.GetOptions()
	if opts == nil {
		return appendTarget{}, invalidf("the first append message must carry the options")
	}
	name, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return appendTarget{}, err
	}
	var exp eventlog.Expected
	switch v := opts.ExpectedStreamRevision.(type) {
	case *streams.AppendReq_Options_Revision:
		exp = eventlog.Expected{Kind: eventlog.ExpectRevision, Revision: v.Revision}
	case *streams.AppendReq_Options_NoStream:
		exp = eventlog.Expected{Kind: eventlog.ExpectNoStream}
	case *streams.AppendReq_Options_Any:
		exp = eventlog.Expected{Kind: eventlog.ExpectAny}
	case *streams.AppendReq_Options_StreamExists:
		exp = eventlog.Expected{Kind: eventlog.ExpectStreamExists}
	default:
		return appendTarget{}, invalidf("expected stream revision required")
	}
	return appendTarget{stream: name, expected: exp}, nil
}

// proposedEvent translates one proposed-message of an Append call.
func proposedEvent(req *streams.AppendReq) (eventlog.Proposed, error) {
	msg := req.GetProposedMessage()
	if msg == nil {
		return eventlog.Proposed{}, invalidf("expected a proposed message after the options")
	}
	typ, okType := msg.Metadata["type"]
	ct, okCT := msg.Metadata["content-type"]
	if !okType || !okCT {
		return eventlog.Proposed{}, ErrMissingMetadata
	}
	if typ == "" {
		return eventlog.Proposed{}, invalidf("event type must not be empty")
	}
	id, err := parseUUID(msg.Id)
	if err != nil {
		return eventlog.Proposed{}, err
	}
	return eventlog.Proposed{
		ID:       id,
		Type:     typ,
		IsJSON:   ct == contentTypeJSON,
		Data:     msg.Data,
		Metadata: msg.CustomMetadata,
	}, nil
}

// expectedFromOneof translates the expected-revision oneof shared in shape
// by Delete and Tombstone options.
func expectedFromOneof(rev uint64, isRev, noStream, anyRev, exists bool) (eventlog.Expected, error) {
	switch {
	case isRev:
		return eventlog.Expected{Kind: eventlog.ExpectRevision, Revision: rev}, nil
	case noStream:
		return eventlog.Expected{Kind: eventlog.ExpectNoStream}, nil
	case anyRev:
		return eventlog.Expected{Kind: eventlog.ExpectAny}, nil
	case exists:
		return eventlog.Expected{Kind: eventlog.ExpectStreamExists}, nil
	default:
		return eventlog.Expected{}, invalidf("expected stream revision required")
	}
}

// deleteTarget translates a Delete request.
func deleteTarget(req *streams.DeleteReq) (appendTarget, error) {
	opts := req.GetOptions()
	if opts == nil {
		return appendTarget{}, invalidf("options required")
	}
	name, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return appendTarget{}, err
	}
	var rev uint64
	var isRev, noStream, anyRev, exists bool
	switch v := opts.ExpectedStreamRevision.(type) {
	case *streams.DeleteReq_Options_Revision:
		rev, isRev = v.Revision, true
	case *streams.DeleteReq_Options_NoStream:
		noStream = true
	case *streams.DeleteReq_Options_Any:
		anyRev = true
	case *streams.DeleteReq_Options_StreamExists:
		exists = true
	}
	exp, err := expectedFromOneof(rev, isRev, noStream, anyRev, exists)
	return appendTarget{stream: name, expected: exp}, err
}

// tombstoneTarget translates a Tombstone request.
func tombstoneTarget(req *streams.TombstoneReq) (appendTarget, error) {
	opts := req.GetOptions()
	if opts == nil {
		return appendTarget{}, invalidf("options required")
	}
	name, err := streamName(opts.StreamIdentifier)
	if err != nil {
		return appendTarget{}, err
	}
	var rev uint64
	var isRev, noStream, anyRev, exists bool
	switch v := opts.ExpectedStreamRevision.(type) {
	case *streams.TombstoneReq_Options_Revision:
		rev, isRev = v.Revision, true
	case *streams.TombstoneReq_Options_NoStream:
		noStream = true
	case *streams.TombstoneReq_Options_Any:
		anyRev = true
	case *streams.TombstoneReq_Options_StreamExists:
		exists = true
	}
	exp, err := expectedFromOneof(rev, isRev, noStream, anyRev, exists)
	return appendTarget{stream: name, expected: exp}, err
}

// startKind is where a read or subscription starts.
type startKind int

const (
	fromStart startKind = iota
	fromEnd
	fromPoint // a revision (stream) or a commit position ($all)
)

// readPlan is a validated Read request.
type readPlan struct {
	all          bool   // $all, else stream
	stream       string // when !all
	from         startKind
	point        uint64 // revision or commit position, when from == fromPoint
	backwards    bool
	resolveLinks bool
	stringIDs    bool // uuid_option string: ids as strings, else structured
	subscription bool
	count        uint64       // when !subscription
	filter       *eventFilter // $all only; nil: DefaultAllFilter alone
}

// parseReadRequest validates a Read request the way EventStoreDB does:
// missing options, uuid option or count option, an unknown direction, a
// backwards subscription, a filter on a stream read, an empty filter
// expression or a bad regex, and a zero checkpoint multiplier on a filtered
// subscription are InvalidArgument.
func parseReadRequest(req *streams.ReadReq) (readPlan, error) {
	opts := req.GetOptions()
	if opts == nil {
		return readPlan{}, invalidf("options required")
	}
	var p readPlan
	switch opts.ReadDirection {
	case streams.ReadReq_Options_Forwards:
	case streams.ReadReq_Options_Backwards:
		p.backwards = true
	default:
		return readPlan{}, invalidf("unknown read direction %d", opts.ReadDirection)
	}
	p.resolveLinks = opts.ResolveLinks

	switch opts.UuidOption.GetContent().(type) {
	case *streams.ReadReq_Options_UUIDOption_Structured:
	case *streams.ReadReq_Options_UUIDOption_String_:
		p.stringIDs = true
	default:
		return readPlan{}, invalidf("uuid option required")
	}

	switch c := opts.CountOption.(type) {
	case *streams.ReadReq_Options_Count:
		p.count = c.Count
	case *streams.ReadReq_Options_Subscription:
		p.subscription = true
		if p.backwards {
			return readPlan{}, invalidf("subscriptions read forwards only")
		}
	default:
		return readPlan{}, invalidf("count option required")
	}

	switch s := opts.StreamOption.(type) {
	case *streams.ReadReq_Options_Stream:
		name, err := streamName(s.Stream.GetStreamIdentifier())
		if err != nil {
			return readPlan{}, err
		}
		p.stream = name
		switch r := s.Stream.RevisionOption.(type) {
		case *streams.ReadReq_Options_StreamOptions_Start:
			p.from = fromStart
		case *streams.ReadReq_Options_StreamOptions_End:
			p.from = fromEnd
		case *streams.ReadReq_Options_StreamOptions_Revision:
			p.from, p.point = fromPoint, r.Revision
		default:
			return readPlan{}, invalidf("stream revision option required")
		}
	case *streams.ReadReq_Options_All:
		p.all = true
		switch a := s.All.GetAllOption().(type) {
		case *streams.ReadReq_Options_AllOptions_Start:
			p.from = fromStart
		case *streams.ReadReq_Options_AllOptions_End:
			p.from = fromEnd
		case *streams.ReadReq_Options_AllOptions_Position:
			if a.Position == nil {
				return readPlan{}, invalidf("position required")
			}
			p.from, p.point = fromPoint, a.Position.CommitPosition
		default:
			return readPlan{}, invalidf("$all position option required")
		}
	default:
		return readPlan{}, invalidf("stream option required")
	}

	if f, ok := opts.FilterOption.(*streams.ReadReq_Options_Filter); ok {
		if !p.all {
			return readPlan{}, invalidf("filters apply to $all only")
		}
		filter, err := parseFilter(f.Filter, p.subscription)
		if err != nil {
			return readPlan{}, err
		}
		p.filter = filter
	}
	return p, nil
}

// eventFilter is a subscription filter on $all: event type or stream name,
// by prefix (ordinal StartsWith) or unanchored regex search.
type eventFilter struct {
	onType   bool // match the event type, else the stream name
	prefixes []string
	re       *regexp.Regexp
	interval uint64 // checkpoint every interval scanned records (window × multiplier)
}

func parseFilter(f *streams.ReadReq_Options_FilterOptions, subscription bool) (*eventFilter, error) {
	if f == nil {
		return nil, invalidf("filter options required")
	}
	var expr *streams.ReadReq_Options_FilterOptions_Expression
	ef := &eventFilter{}
	switch v := f.Filter.(type) {
	case *streams.ReadReq_Options_FilterOptions_EventType:
		expr, ef.onType = v.EventType, true
	case *streams.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	default:
		return nil, invalidf("filter on event type or stream name required")
	}
	switch {
	case expr == nil || (expr.Regex == "" && len(expr.Prefix) == 0):
		return nil, invalidf("filter needs a regex or prefixes")
	case expr.Regex != "":
		re, err := regexp.Compile(expr.Regex)
		if err != nil {
			return nil, invalidf("filter regex: %v", err)
		}
		ef.re = re
	default:
		ef.prefixes = append([]string(nil), expr.Prefix...)
	}
	window := uint64(defaultWindow)
	if m, ok := f.Window.(*streams.ReadReq_Options_FilterOptions_Max); ok && m.Max > 0 {
		window = uint64(m.Max)
	}
	if subscription && f.CheckpointIntervalMultiplier == 0 {
		return nil, invalidf("checkpoint interval multiplier must be greater than zero")
	}
	ef.interval = window * uint64(max(f.CheckpointIntervalMultiplier, 1))
	return ef, nil
}

// match reports whether rec passes the filter (DefaultAllFilter excluded).
func (f *eventFilter) match(rec *eventlog.Record) bool {
	s := rec.Stream
	if f.onType {
		s = rec.Type
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// inDefaultAllFilter reports whether a record of stream may appear in $all:
// EventStoreDB hides $epoch-information and the checkpoint and parked
// streams of $all persistent-subscription groups.
func inDefaultAllFilter(stream string) bool {
	if stream == "$epoch-information" {
		return false
	}
	if strings.HasPrefix(stream, "$persistentsubscription-$all::") &&
		(strings.HasSuffix(stream, "-checkpoint") || strings.HasSuffix(stream, "-parked")) {
		return false
	}
	return true
}

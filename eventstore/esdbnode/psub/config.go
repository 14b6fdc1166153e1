package psub

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
)

// Names of the engine's own streams and event types (as on a real node).
const (
	allStream          = "$all"
	configStream       = "$persistentSubscriptionConfig"
	configEventType    = "$PersistentConfig"
	checkpointType     = "$SubscriptionCheckpoint"
	streamPrefix       = "$persistentsubscription-"
	checkpointSuffix   = "-checkpoint"
	parkedSuffix       = "-parked"
	epochStream        = "$epoch-information"
	defaultConnName    = "<unknown>"
	defaultClientSlots = 10
)

// Consumer strategy names.
const (
	strategyRoundRobin          = "RoundRobin"
	strategyDispatchToSingle    = "DispatchToSingle"
	strategyPinned              = "Pinned"
	strategyPinnedByCorrelation = "PinnedByCorrelation"
)

// filterConfig is a $all group's filter (event type or stream name, by regex
// or by prefixes).
type filterConfig struct {
	OnEventType bool     `json:"onEventType"`
	Regex       string   `json:"regex,omitempty"`
	Prefixes    []string `json:"prefixes,omitempty"`
}

// configEntry is one group in the $PersistentConfig event. Field names follow
// EventStoreDB's PersistentSubscriptionEntry; StartFrom is the start the client
// asked for ("-1" End, "0" Start, "<n>", "C:<c>/P:<p>"), StartPosition the
// first sequence number to deliver, resolved at creation (End fixed then).
type configEntry struct {
	Stream                string        `json:"Stream"`
	Group                 string        `json:"Group"`
	Filter                *filterConfig `json:"Filter,omitempty"`
	ResolveLinkTos        bool          `json:"ResolveLinkTos"`
	CheckPointAfter       int32         `json:"CheckPointAfter"` // ms
	ExtraStatistics       bool          `json:"ExtraStatistics"`
	HistoryBufferSize     int32         `json:"HistoryBufferSize"`
	LiveBufferSize        int32         `json:"LiveBufferSize"`
	MaxCheckPointCount    int32         `json:"MaxCheckPointCount"`
	MinCheckPointCount    int32         `json:"MinCheckPointCount"`
	MaxRetryCount         int32         `json:"MaxRetryCount"`
	ReadBatchSize         int32         `json:"ReadBatchSize"`
	MaxSubscriberCount    int32         `json:"MaxSubscriberCount"`
	MessageTimeout        int32         `json:"MessageTimeout"` // ms
	NamedConsumerStrategy string        `json:"NamedConsumerStrategy"`
	StartFrom             string        `json:"StartFrom"`
	StartPosition         uint64        `json:"StartPosition"`
}

// persistedConfig is the data of a $PersistentConfig event.
type persistedConfig struct {
	Version   string        `json:"Version"`
	Updated   string        `json:"Updated"`
	UpdatedBy string        `json:"UpdatedBy"`
	Entries   []configEntry `json:"Entries"`
}

func groupKey(stream, group string) string { return stream + "::" + group }

func checkpointStreamOf(key string) string { return streamPrefix + key + checkpointSuffix }

func parkedStreamOf(key string) string { return streamPrefix + key + parkedSuffix }

func (e *configEntry) isAll() bool { return e.Stream == allStream }

// formatSeq renders a sequence number the way a real node does: an event
// number for stream groups, "C:<p>/P:<p>" for $all groups.
func formatSeq(all bool, seq int64) string {
	if all {
		return fmt.Sprintf("C:%d/P:%d", seq, seq)
	}
	return strconv.FormatInt(seq, 10)
}

// parseSeq reads formatSeq's output (and "C:c/P:p" with c != p, using c).
func parseSeq(s string) (int64, error) {
	if rest, ok := strings.CutPrefix(s, "C:"); ok {
		c, _, found := strings.Cut(rest, "/P:")
		if !found {
			return 0, fmt.Errorf("bad position %q", s)
		}
		return strconv.ParseInt(c, 10, 64)
	}
	return strconv.ParseInt(s, 10, 64)
}

func validStrategy(s string) bool {
	switch s {
	case strategyRoundRobin, strategyDispatchToSingle, strategyPinned, strategyPinnedByCorrelation:
		return true
	}
	return false
}

// validate checks the settings as a real node does.
func (e *configEntry) validate() error {
	fail := func(format string, args ...any) error {
		return newGroupError(ErrInvalid, e.Stream, e.Group, fmt.Sprintf(format, args...))
	}
	switch {
	case e.Group == "":
		return fail("group name is empty")
	case e.Stream == "":
		return fail("stream name is empty")
	case !validStrategy(e.NamedConsumerStrategy):
		return fail("consumer strategy %q is not known", e.NamedConsumerStrategy)
	case e.ReadBatchSize <= 0:
		return fail("read batch size must be positive")
	case e.ReadBatchSize >= e.HistoryBufferSize:
		return fail("Read batch size should be less than history buffer size. (Parameter 'readBatchSize')")
	case e.LiveBufferSize <= 0:
		return fail("live buffer size must be positive")
	case e.MaxRetryCount < 0, e.MessageTimeout < 0, e.CheckPointAfter < 0,
		e.MinCheckPointCount < 0, e.MaxCheckPointCount < 0, e.MaxSubscriberCount < 0:
		return fail("negative setting")
	}
	return nil
}

// settingsFields is what Create and Update share.
type settingsFields struct {
	resolveLinks, extraStats                              bool
	maxRetry, minCk, maxCk, maxSubs, live, batch, history int32
	timeoutMs, ckAfterMs                                  int32
	strategy                                              string
}

func (f settingsFields) apply(e *configEntry) {
	e.ResolveLinkTos = f.resolveLinks
	e.ExtraStatistics = f.extraStats
	e.MaxRetryCount = f.maxRetry
	e.MinCheckPointCount = f.minCk
	e.MaxCheckPointCount = f.maxCk
	e.MaxSubscriberCount = f.maxSubs
	e.LiveBufferSize = f.live
	e.ReadBatchSize = f.batch
	e.HistoryBufferSize = f.history
	e.MessageTimeout = f.timeoutMs
	e.CheckPointAfter = f.ckAfterMs
	e.NamedConsumerStrategy = f.strategy
}

func ticksToMs(t int64) int32 {
	ms := t / 10000
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(ms)
}

func createSettings(s *persistent.CreateReq_Settings) settingsFields {
	f := settingsFields{
		resolveLinks: s.GetResolveLinks(), extraStats: s.GetExtraStatistics(),
		maxRetry: s.GetMaxRetryCount(), minCk: s.GetMinCheckpointCount(), maxCk: s.GetMaxCheckpointCount(),
		maxSubs: s.GetMaxSubscriberCount(), live: s.GetLiveBufferSize(), batch: s.GetReadBatchSize(),
		history: s.GetHistoryBufferSize(),
	}
	switch v := s.GetMessageTimeout().(type) {
	case *persistent.CreateReq_Settings_MessageTimeoutMs:
		f.timeoutMs = v.MessageTimeoutMs
	case *persistent.CreateReq_Settings_MessageTimeoutTicks:
		f.timeoutMs = ticksToMs(v.MessageTimeoutTicks)
	}
	switch v := s.GetCheckpointAfter().(type) {
	case *persistent.CreateReq_Settings_CheckpointAfterMs:
		f.ckAfterMs = v.CheckpointAfterMs
	case *persistent.CreateReq_Settings_CheckpointAfterTicks:
		f.ckAfterMs = ticksToMs(v.CheckpointAfterTicks)
	}
	f.strategy = s.GetConsumerStrategy()
	if f.strategy == "" {
		f.strategy = s.GetNamedConsumerStrategy().String()
	}
	return f
}

func updateSettings(s *persistent.UpdateReq_Settings) settingsFields {
	f := settingsFields{
		resolveLinks: s.GetResolveLinks(), extraStats: s.GetExtraStatistics(),
		maxRetry: s.GetMaxRetryCount(), minCk: s.GetMinCheckpointCount(), maxCk: s.GetMaxCheckpointCount(),
		maxSubs: s.GetMaxSubscriberCount(), live: s.GetLiveBufferSize(), batch: s.GetReadBatchSize(),
		history: s.GetHistoryBufferSize(), strategy: s.GetNamedConsumerStrategy().String(),
	}
	switch v := s.GetMessageTimeout().(type) {
	case *persistent.UpdateReq_Settings_MessageTimeoutMs:
		f.timeoutMs = v.MessageTimeoutMs
	case *persistent.UpdateReq_Settings_MessageTimeoutTicks:
		f.timeoutMs = ticksToMs(v.MessageTimeoutTicks)
	}
	switch v := s.GetCheckpointAfter().(type) {
	case *persistent.UpdateReq_Settings_CheckpointAfterMs:
		f.ckAfterMs = v.CheckpointAfterMs
	case *persistent.UpdateReq_Settings_CheckpointAfterTicks:
		f.ckAfterMs = ticksToMs(v.CheckpointAfterTicks)
	}
	return f
}

// startSpec is a requested start: kind 's' start, 'e' end, 'p' explicit.
type startSpec struct {
	kind byte
	pos  uint64 // revision or commit position for 'p'
	prep uint64 // prepare position ($all)
}

func (s startSpec) String(all bool) string {
	switch s.kind {
	case 's':
		return formatSeq(all, 0)
	case 'e':
		return formatSeq(all, -1)
	}
	if all {
		return fmt.Sprintf("C:%d/P:%d", s.pos, s.prep)
	}
	return strconv.FormatUint(s.pos, 10)
}

func streamName(id *shared.StreamIdentifier) string {
	if id == nil {
		return ""
	}
	return string(id.GetStreamName())
}

func filterFromCreate(f *persistent.CreateReq_AllOptions_FilterOptions) *filterConfig {
	if f == nil {
		return nil
	}
	fc := &filterConfig{}
	var expr *persistent.CreateReq_AllOptions_FilterOptions_Expression
	switch v := f.GetFilter().(type) {
	case *persistent.CreateReq_AllOptions_FilterOptions_EventType:
		fc.OnEventType = true
		expr = v.EventType
	case *persistent.CreateReq_AllOptions_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	default:
		return nil
	}
	fc.Regex = expr.GetRegex()
	fc.Prefixes = expr.GetPrefix()
	return fc
}

// eventFilter decides which $all records a $all group delivers.
type eventFilter struct {
	cfg *filterConfig
	re  *regexp.Regexp
}

func newEventFilter(fc *filterConfig) (*eventFilter, error) {
	f := &eventFilter{cfg: fc}
	if fc != nil && fc.Regex != "" {
		re, err := regexp.Compile(fc.Regex)
		if err != nil {
			return nil, err
		}
		f.re = re
	}
	return f, nil
}

// defaultAllExcluded is EventStoreDB's DefaultAllFilter.
func defaultAllExcluded(stream string) bool {
	if stream == epochStream {
		return true
	}
	if strings.HasPrefix(stream, streamPrefix+allStream+"::") &&
		(strings.HasSuffix(stream, checkpointSuffix) || strings.HasSuffix(stream, parkedSuffix)) {
		return true
	}
	return false
}

func (f *eventFilter) match(stream, eventType string) bool {
	if defaultAllExcluded(stream) {
		return false
	}
	if f == nil || f.cfg == nil {
		return true
	}
	subject := stream
	if f.cfg.OnEventType {
		subject = eventType
	}
	if f.re != nil {
		return f.re.MatchString(subject)
	}
	if len(f.cfg.Prefixes) == 0 {
		return true
	}
	for _, p := range f.cfg.Prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

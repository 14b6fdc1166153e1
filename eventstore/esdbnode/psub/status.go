// Status: what GetInfo and List report of a group (the counts, rates,
// positions and connections of a real node, and ack latencies when
// extra_statistics is on).

package psub

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
)

func perSecond(n int64, d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32(float64(n) / d.Seconds())
}

func (g *group) info(ctx context.Context) *persistent.SubscriptionInfo {
	parked := g.parkedCount(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	all := g.cfg.isAll()
	pos := func(v int64) string {
		if v < 0 {
			return ""
		}
		return formatSeq(all, v)
	}
	st := g.statusWordsLocked()
	info := &persistent.SubscriptionInfo{
		EventSource:                   g.cfg.Stream,
		GroupName:                     g.cfg.Group,
		Status:                        strings.Join(st, ", "),
		AveragePerSecond:              perSecond(g.since, now.Sub(g.measuredAt)),
		TotalItems:                    g.total,
		CountSinceLastMeasurement:     g.since,
		LastCheckpointedEventPosition: pos(g.lastCk),
		LastKnownEventPosition:        pos(g.lastKnown),
		ResolveLinkTos:                g.cfg.ResolveLinkTos,
		StartFrom:                     g.cfg.StartFrom,
		MessageTimeoutMilliseconds:    g.cfg.MessageTimeout,
		ExtraStatistics:               g.cfg.ExtraStatistics,
		MaxRetryCount:                 g.cfg.MaxRetryCount,
		LiveBufferSize:                g.cfg.LiveBufferSize,
		BufferSize:                    g.cfg.HistoryBufferSize,
		ReadBatchSize:                 g.cfg.ReadBatchSize,
		CheckPointAfterMilliseconds:   g.cfg.CheckPointAfter,
		MinCheckPointCount:            g.cfg.MinCheckPointCount,
		MaxCheckPointCount:            g.cfg.MaxCheckPointCount,
		RetryBufferCount:              int32(len(g.retry)),
		TotalInFlightMessages:         int32(len(g.outstanding)),
		OutstandingMessagesCount:      int32(len(g.outstanding)),
		NamedConsumerStrategy:         g.cfg.NamedConsumerStrategy,
		MaxSubscriberCount:            g.cfg.MaxSubscriberCount,
		ParkedMessageCount:            parked,
	}
	if g.live {
		info.LiveBufferCount = int64(len(g.buffer))
	} else {
		info.ReadBufferCount = int32(len(g.buffer))
	}
	g.since, g.measuredAt = 0, now
	for _, c := range g.clients {
		ci := &persistent.SubscriptionInfo_ConnectionInfo{
			AverageItemsPerSecond:     perSecond(c.since, now.Sub(c.measuredAt)),
			TotalItems:                c.total,
			CountSinceLastMeasurement: c.since,
			AvailableSlots:            int32(c.slots - c.inflight),
			InFlightMessages:          int32(c.inflight),
			ConnectionName:            defaultConnName,
		}
		if g.cfg.ExtraStatistics {
			ci.ObservedMeasurements = latencyStats(c.latencies)
		}
		c.since, c.measuredAt = 0, now
		info.Connections = append(info.Connections, ci)
	}
	return info
}

// latencyStats reports ack latencies in microseconds.
func latencyStats(l []time.Duration) []*persistent.SubscriptionInfo_Measurement {
	if len(l) == 0 {
		return nil
	}
	s := slices.Clone(l)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	return []*persistent.SubscriptionInfo_Measurement{
		{Key: "Mean", Value: us(sum / time.Duration(len(s)))},
		{Key: "Median", Value: us(s[len(s)/2])},
		{Key: "Fastest", Value: us(s[0])},
		{Key: "Slowest", Value: us(s[len(s)-1])},
	}
}

// statusWordsLocked is the group's status as EventStoreDB words it (Faulted, NotReady, Live or
// Behind, then ReplayingParkedMessages while a replay runs), for the gRPC info and the web UI
// alike. g.mu is held.
func (g *group) statusWordsLocked() []string {
	var st []string
	switch {
	case g.faulted != nil:
		st = append(st, "Faulted")
	case !g.loaded:
		st = append(st, "NotReady")
	case g.live:
		st = append(st, "Live")
	default:
		st = append(st, "Behind")
	}
	if g.replaying {
		st = append(st, "ReplayingParkedMessages")
	}
	return st
}

package statusweb

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets span 100µs to 10s: a synced append on a fast disk to a slow
// handler (an SMTP send).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics are the latency histograms of the app. It is safe for concurrent
// use; a nil *Metrics ignores observations, so callers need no checks.
type Metrics struct {
	append prometheus.Histogram
	handle *prometheus.HistogramVec
}

func newMetrics() *Metrics {
	return &Metrics{
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orders_append_seconds",
			Help:    "Time to append an order's events to the event store (one repository append, retries included).",
			Buckets: latencyBuckets,
		}),
		handle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orders_handle_seconds",
			Help:    "Time a subscriber took to handle one event (or batch), by subscriber.",
			Buckets: latencyBuckets,
		}, []string{"name"}),
	}
}

// ObserveAppend records the duration of one append.
func (m *Metrics) ObserveAppend(d time.Duration) {
	if m == nil {
		return
	}
	m.append.Observe(d.Seconds())
}

// ObserveHandle records how long subscriber name took to handle an event.
func (m *Metrics) ObserveHandle(name string, d time.Duration) {
	if m == nil {
		return
	}
	m.handle.WithLabelValues(name).Observe(d.Seconds())
}

var (
	subLabels      = []string{"name", "kind"}
	descLag        = prometheus.NewDesc("orders_subscriber_lag", "How far behind the subscriber is (0: up to date).", subLabels, nil)
	descPosition   = prometheus.NewDesc("orders_subscriber_position", "The last position the subscriber recorded.", subLabels, nil)
	descHead       = prometheus.NewDesc("orders_subscriber_head", "The head of what the subscriber follows.", subLabels, nil)
	descParked     = prometheus.NewDesc("orders_subscriber_parked", "Events the subscriber parked (nacked with Park) in this process.", subLabels, nil)
	descConnected  = prometheus.NewDesc("orders_subscriber_connected", "1 if the subscriber's subscription is running.", subLabels, nil)
	descStalled    = prometheus.NewDesc("orders_subscriber_stalled", "1 if the subscriber lags and made no progress for the stall time.", subLabels, nil)
	descSince      = prometheus.NewDesc("orders_subscriber_seconds_since_last_handled", "Seconds since the subscriber last handled an event (absent if never).", subLabels, nil)
	descHandled    = prometheus.NewDesc("orders_subscriber_handled_total", "Events the subscriber handled and acked.", subLabels, nil)
	descRetried    = prometheus.NewDesc("orders_subscriber_retried_total", "Events the subscriber nacked for a retry.", subLabels, nil)
	descUnknown    = prometheus.NewDesc("orders_subscriber_unknown_events_total", "Events the subscriber skipped because it does not know their type, by type.", append(subLabels, "type"), nil)
	subscriberDesc = []*prometheus.Desc{descLag, descPosition, descHead, descParked, descConnected, descStalled, descSince, descHandled, descRetried, descUnknown}
)

// subscriberCollector reports the Server's last evaluation of the subscribers.
type subscriberCollector Server

func (c *subscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range subscriberDesc {
		ch <- d
	}
}

func (c *subscriberCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	latest := c.latest
	c.mu.Unlock()
	for _, st := range latest {
		lv := []string{st.Name, st.Kind}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		gauge(descLag, float64(st.Lag))
		gauge(descPosition, float64(st.Position))
		gauge(descHead, float64(st.Head))
		gauge(descParked, float64(st.Parked))
		gauge(descConnected, boolFloat(st.Connected))
		gauge(descStalled, boolFloat(st.Stalled))
		if !st.LastHandledAt.IsZero() {
			gauge(descSince, st.SinceLastHandled.Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descHandled, prometheus.CounterValue, float64(st.Handled), lv...)
		ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(st.Retried), lv...)
		for typ, n := range st.Unknown {
			ch <- prometheus.MustNewConstMetric(descUnknown, prometheus.CounterValue, float64(n), st.Name, st.Kind, typ)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

// formatSince renders a duration for people: "4s", "3m20s", "2h5m", "3d4h".
func formatSince(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m" + strconv.Itoa(int(d%time.Minute/time.Second)) + "s"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h" + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d" + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h"
	}
}

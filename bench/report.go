package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is what RunSuite measured, ready for WriteMarkdown or JSON.
type Report struct {
	Started  time.Time      `json:"started"`
	Elapsed  time.Duration  `json:"elapsedNs"`
	Machine  Machine        `json:"machine"`
	Options  ReportOptions  `json:"options"`
	Targets  []TargetStatus `json:"targets"`
	Tables   []Table        `json:"tables"`
	Memory   []Memory       `json:"memory"`
	Disk     []DiskUsage    `json:"disk"`
	Preloads []PreloadTime  `json:"preloads"`
	NotRun   []NotRun       `json:"notRun"`
	// OrderFlowCatchUp is how long after the order flow's timed part the
	// projections had applied every event.
	OrderFlowCatchUp time.Duration `json:"orderFlowProjectionsCatchUpNs"`
	// ReadSide: the projections live and rebuilding against the ceiling (see ReadSide).
	ReadSide *ReadSideReport `json:"readSide,omitempty"`
}

// ReportOptions are the options that shaped the figures.
type ReportOptions struct {
	Sizes            []int         `json:"sizes"`
	Rounds           int           `json:"rounds"`
	MaxDuration      time.Duration `json:"maxDurationNs"`
	SingleEvents     int           `json:"singleEvents"`
	ConcurrentEvents int           `json:"concurrentEvents"`
	BatchEvents      int           `json:"batchEvents"`
	ReadEvents       int           `json:"readEvents"`
	CatchUpEvents    int           `json:"catchUpEvents"`
	NodeProcess      string        `json:"nodeProcess"` // in-process, child process, external
}

// Machine is where the suite ran.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpuModel"`
	MemoryBytes int64  `json:"memoryBytes"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"goVersion"`
	LoadStart   string `json:"loadAverageStart"`
	LoadEnd     string `json:"loadAverageEnd"`
}

// TargetStatus says whether a target ran, and what it was.
type TargetStatus struct {
	Name   string   `json:"name"`
	Ran    bool     `json:"ran"`
	Reason string   `json:"reason,omitempty"` // why not
	Notes  []string `json:"notes,omitempty"`
}

// Table is one workload at one store size across the targets.
type Table struct {
	Workload string   `json:"workload"`
	Size     int      `json:"size"`
	Figures  []Figure `json:"figures"`
}

// Figure is one target's median round of a workload.
type Figure struct {
	Target       string        `json:"target"`
	EventsPerSec float64       `json:"eventsPerSec"`
	OpsPerSec    float64       `json:"opsPerSec"`
	P50          time.Duration `json:"p50Ns"`
	P99          time.Duration `json:"p99Ns"`
	Events       int           `json:"events"`
	Ops          int           `json:"ops"`
	Writers      int           `json:"writers"`
	Ratio        float64       `json:"ratioToBest"` // events/s over the best target's
	Rounds       []float64     `json:"roundsEventsPerSec"`
}

// Memory is the node's resident memory at a size.
type Memory struct {
	Size     int    `json:"size"`
	When     string `json:"when"` // "after preload", "after workloads"
	RSSBytes int64  `json:"rssBytes"`
	Error    string `json:"error,omitempty"`
}

// DiskUsage is what a target's store takes on disk after the preload of a
// size, holding Events events.
type DiskUsage struct {
	Target string `json:"target"`
	Size   int    `json:"size"`
	Events int    `json:"events"`
	Bytes  int64  `json:"bytes"`
	Error  string `json:"error,omitempty"`
}

// PreloadTime is how long filling a store took.
type PreloadTime struct {
	Target  string        `json:"target"`
	Size    int           `json:"size"`
	Events  int           `json:"events"`
	Elapsed time.Duration `json:"elapsedNs"`
	// Settle is how long the store took to settle after the load (see
	// settler); SettleError says why it did not (0 and "" for a store
	// that has no such step).
	Settle      time.Duration `json:"settleNs"`
	SettleError string        `json:"settleError,omitempty"`
}

// NotRun is a workload the suite did not run, and why.
type NotRun struct {
	Workload string `json:"workload"`
	Reason   string `json:"reason"`
}

type noter interface{ Notes() []string }

type processKind interface{ process() string }

func (t *esdbTarget) process() string { return t.where }

func newReport(o SuiteOptions) *Report {
	return &Report{
		Started: time.Now(),
		Machine: machine(),
		Options: ReportOptions{
			Sizes: o.Sizes, Rounds: o.Rounds, MaxDuration: o.MaxDuration,
			SingleEvents: o.SingleEvents, ConcurrentEvents: o.ConcurrentEvents,
			BatchEvents: o.BatchEvents, ReadEvents: o.ReadEvents, CatchUpEvents: o.CatchUpEvents,
		},
	}
}

func (r *Report) finish() {
	r.Elapsed = time.Since(r.Started)
	r.Machine.LoadEnd = loadAverage()
}

func (r *Report) addTarget(name string, t Target, reason string) {
	s := TargetStatus{Name: name, Ran: t != nil, Reason: reason}
	if n, ok := t.(noter); ok {
		s.Notes = n.Notes()
	}
	if p, ok := t.(processKind); ok {
		r.Options.NodeProcess = p.process()
		s.Notes = append(s.Notes, "node "+p.process())
	}
	r.Targets = append(r.Targets, s)
}

// refreshNotes takes t's notes again, at the end of the run.
func (r *Report) refreshNotes(t Target) {
	n, ok := t.(noter)
	if !ok {
		return
	}
	for i := range r.Targets {
		if r.Targets[i].Name == t.Name() {
			r.Targets[i].Notes = n.Notes()
		}
	}
}

func (r *Report) addPreload(target string, size, events int, elapsed, settle time.Duration, settleErr error) {
	p := PreloadTime{Target: target, Size: size, Events: events, Elapsed: elapsed, Settle: settle}
	if settleErr != nil {
		p.SettleError = settleErr.Error()
	}
	r.Preloads = append(r.Preloads, p)
}

func (r *Report) addMemory(size int, when string, targets []*suiteTarget) {
	for _, t := range targets {
		m, ok := t.Target.(memoryReporter)
		if !ok {
			continue
		}
		mem := Memory{Size: size, When: when}
		rss, err := m.RSS()
		if err != nil {
			mem.Error = err.Error()
		}
		mem.RSSBytes = rss
		r.Memory = append(r.Memory, mem)
	}
}

func (r *Report) addDisk(ctx context.Context, size int, targets []*suiteTarget) {
	for _, t := range targets {
		d, ok := t.Target.(diskReporter)
		if !ok {
			continue
		}
		u := DiskUsage{Target: t.Name(), Size: size, Events: t.written}
		n, err := d.DiskBytes(ctx)
		if err != nil {
			u.Error = err.Error()
		}
		u.Bytes = n
		r.Disk = append(r.Disk, u)
	}
}

// addTable adds the median round of each target, in target order, with
// its ratio to the best.
func (r *Report) addTable(workload string, size int, rounds map[string][]Result) {
	tb := Table{Workload: workload, Size: size}
	best := 0.0
	for _, name := range allTargets {
		rs, ok := rounds[name]
		if !ok || len(rs) == 0 {
			continue
		}
		m := median(rs)
		f := Figure{
			Target: name, EventsPerSec: m.EventsPerSec(), OpsPerSec: m.OpsPerSec(),
			P50: m.P50, P99: m.P99, Events: m.Events, Ops: m.Ops, Writers: m.Writers,
		}
		for _, res := range rs {
			f.Rounds = append(f.Rounds, res.EventsPerSec())
		}
		best = max(best, f.EventsPerSec)
		tb.Figures = append(tb.Figures, f)
	}
	for i := range tb.Figures {
		if best > 0 {
			tb.Figures[i].Ratio = tb.Figures[i].EventsPerSec / best
		}
	}
	r.Tables = append(r.Tables, tb)
}

// Best is the figure of the fastest target of t.
func (t Table) Best() Figure {
	return slices.MaxFunc(t.Figures, func(a, b Figure) int { return cmp.Compare(a.EventsPerSec, b.EventsPerSec) })
}

// WriteJSON writes r as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// workloadNotes explain a workload under its tables.
var workloadNotes = map[string]string{
	"append-1":   "one writer, one event per append with its expected revision, each acknowledged after fsync",
	"batch-100":  "one writer, 100 events per append; nats: 100 async publishes awaited — JetStream has no atomic multi-message append (only the first carries the expected sequence)",
	"read-all":   "the whole store in global order, pages of 1000, from the start (over again at the end); postgres: keyset pagination on global_position; nats: ordered consumer, FetchNoWait",
	"order-flow": "the node only: 16 clients place an order and pay it through eventstore.Repository (load, decide, append with expected revision) while the app's projections (projections.Runner, SQLite, one persistent subscription group each) run on the same node; events/s counts the 2 events per order, calls/s the orders, latencies are per order",
	"catch-up":   "a subscriber from the start until it has received the events; node: SubscribeToAll; postgres: keyset polling; nats: ordered consumer; one round, never capped",
}

// WriteMarkdown renders r: the targets, a table per workload and size, the
// node's memory, the preloads, and what was not run.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, %s RAM, Linux %s, %s; load average %s at the start, %s at the end. Run took %v.\n\n",
		m.CPUs, m.CPUModel, bytesIEC(m.MemoryBytes), m.Kernel, m.GoVersion, m.LoadStart, m.LoadEnd, r.Elapsed.Round(time.Second))
	o := r.Options
	fmt.Fprintf(&b, "Sizes %v, %d round(s) per workload (median shown), each capped at %v; append-1 %d events, other appends %d, batch %d, read-all %d, catch-up %d per round.\n\n",
		o.Sizes, o.Rounds, o.MaxDuration, o.SingleEvents, o.ConcurrentEvents, o.BatchEvents, o.ReadEvents, o.CatchUpEvents)
	b.WriteString("| target | ran | notes |\n|---|---|---|\n")
	for _, t := range r.Targets {
		ran := "yes"
		if !t.Ran {
			ran = t.Reason
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, mdEscape(ran), mdEscape(strings.Join(t.Notes, "; ")))
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "\n### %s, %s events in the store\n\n", t.Workload, rate(float64(t.Size)))
		b.WriteString("| target | events/s | calls/s | p50 per call | p99 per call | ratio to best | events |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, f := range t.Figures {
			fmt.Fprintf(&b, "| %s | %s | %s | %v | %v | %.2f | %s |\n", f.Target, rate(f.EventsPerSec), rate(f.OpsPerSec),
				roundLatency(f.P50), roundLatency(f.P99), f.Ratio, rate(float64(f.Events)))
		}
		if note, ok := workloadNotes[t.Workload]; ok {
			fmt.Fprintf(&b, "\n%s.\n", note)
		}
		if t.Workload == "order-flow" {
			fmt.Fprintf(&b, "\nThe projections had applied every event %v after the timed part ended.\n", r.OrderFlowCatchUp.Round(time.Millisecond))
		}
	}
	if len(r.Memory) > 0 {
		fmt.Fprintf(&b, "\n### node resident memory (%s)\n\n| events in the store | when | VmRSS |\n|---:|---|---:|\n", o.NodeProcess)
		for _, mem := range r.Memory {
			v := bytesIEC(mem.RSSBytes)
			if mem.Error != "" {
				v = mdEscape(mem.Error)
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", rate(float64(mem.Size)), mem.When, v)
		}
	}
	if len(r.Disk) > 0 {
		b.WriteString("\n### bytes on disk after the preload\n\n| target | events in the store | on disk | bytes per event |\n|---|---:|---:|---:|\n")
		for _, u := range r.Disk {
			v, per := bytesIEC(u.Bytes), "-"
			if u.Error != "" {
				v = mdEscape(u.Error)
			} else if u.Events > 0 {
				per = rate(float64(u.Bytes) / float64(u.Events))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", u.Target, rate(float64(u.Events)), v, per)
		}
		b.WriteString("\nnode: the chunk files (preallocated, so a small store shows whole chunks) and the index; postgres: the table with its indexes (pg_total_relation_size), without the server's WAL; nats: the JetStream store directory.\n")
	}
	if len(r.Preloads) > 0 {
		b.WriteString("\n### preloads (untimed in the tables)\n\n| target | to size | events | took | events/s | then settled in |\n|---|---:|---:|---:|---:|---:|\n")
		for _, p := range r.Preloads {
			settled := "-"
			switch {
			case p.SettleError != "":
				settled = "not settled: " + mdEscape(p.SettleError)
			case p.Settle > 0:
				settled = p.Settle.Round(100 * time.Millisecond).String()
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %v | %s | %s |\n", p.Target, rate(float64(p.Size)), rate(float64(p.Events)),
				p.Elapsed.Round(time.Second), rate(float64(p.Events)/p.Elapsed.Seconds()), settled)
		}
		b.WriteString("\nAfter each preload, before the figures: the node until its process is idle (its index compacting what the load wrote), PostgreSQL VACUUM (ANALYZE) of the table and a CHECKPOINT; NATS nothing.\n")
	}
	for _, n := range r.NotRun {
		fmt.Fprintf(&b, "\n**%s: not run.** %s.\n", n.Workload, n.Reason)
	}
	r.ReadSide.writeMarkdown(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
					m.MemoryBytes = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

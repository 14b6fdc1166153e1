package main

import (
	"runtime/debug"
	"strings"
)

// commit is the commit the binary was built from when the go command could not record it
// (a build outside a git checkout, or with -buildvcs=false):
// go build -ldflags "-X main.commit=$(git rev-parse HEAD)" ./cmd/orders.
var commit string

// version describes the binary for --version: the module version, the commit it was built
// from (with "+dirty" when the tree had changes) and the Go version, from the build
// information the go command records.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	rev, dirty := commit, false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	return strings.Join([]string{v, "commit " + rev, bi.GoVersion}, " ")
}

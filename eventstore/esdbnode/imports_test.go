package esdbnode_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNodeImportsNoApplicationPackage keeps the node a node: nothing under
// eventstore/esdbnode (tests included) may depend on a package of this module
// outside eventstore/esdbnode, so the node can be lifted out and the
// application cannot leak into the server (the cross-system benchmarks that
// drive both live in the top-level bench package).
func TestNodeImportsNoApplicationPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module := strings.TrimSpace(string(out))
	node := module + "/eventstore/esdbnode"
	out, err = exec.Command("go", "list", "-deps", "-test", "-f", "{{with .ForTest}}{{.}}{{else}}{{.ImportPath}}{{end}}", node+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	var checked int
	for _, p := range strings.Fields(string(out)) {
		// Test variants read "pkg [pkg.test]", "pkg_test [pkg.test]" and "pkg.test".
		p = strings.TrimSuffix(strings.TrimSuffix(p, ".test"), "_test")
		if p != module && !strings.HasPrefix(p, module+"/") {
			continue
		}
		checked++
		if p != node && !strings.HasPrefix(p, node+"/") {
			t.Errorf("the node depends on %s, a package outside eventstore/esdbnode", p)
		}
	}
	if checked == 0 {
		t.Fatalf("go list -deps %s/... listed no package of module %s", node, module)
	}
}

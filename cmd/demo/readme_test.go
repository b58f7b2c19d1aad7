package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// readmeWalkthrough returns the sh blocks of the README's walkthrough, in
// order: the steps a reader pastes into a terminal.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "### Walkthrough")
	end := strings.Index(text[start:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("the README has no walkthrough section")
	}
	section := text[start : start+end]
	var blocks []string
	for _, part := range strings.Split(section, "```sh\n")[1:] {
		code, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatal("an unterminated sh block in the walkthrough")
		}
		blocks = append(blocks, code)
	}
	return blocks
}

// TestReadmeWalkthroughRunsTwice pastes the README's walkthrough blocks
// into bash against the demo (on free ports), twice: every step works on a
// second run too (nothing cascades into JSON errors), and every step's
// output ends with a newline (one line per output, nothing run together).
func TestReadmeWalkthroughRunsTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real gateway")
	}
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the README's shell steps (.ci/run installs it): %v", tool, err)
		}
	}
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(demo.ClientSecretEnv, "readme-test-secret")
	adminAddr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	d, err := start(options{
		gatewayPort: gatewaytest.FreePort(t),
		adminAddr:   adminAddr,
		idpAddr:     "127.0.0.1:0",
		appAddr:     "127.0.0.1:0",
		dataDir:     t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.stop() })

	blocks := readmeWalkthrough(t)
	if len(blocks) != 5 {
		t.Fatalf("%d sh blocks in the walkthrough, want 5 (token, provisioning, group move, deactivation, audit)", len(blocks))
	}
	script := strings.Join(blocks, "\n")
	script = strings.ReplaceAll(script, "http://localhost:2019", "http://"+adminAddr)
	script = strings.ReplaceAll(script, "http://localhost:8080", fmt.Sprintf("http://127.0.0.1:%d", d.settings.GatewayPort))

	hexToken := regexp.MustCompile(`^[0-9a-f]{64}$`)
	ids := regexp.MustCompile(`^alice=[0-9a-f-]{36} Engineering=[0-9a-f-]{36} Admins=[0-9a-f-]{36}$`)
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", "-u", "-o", "pipefail", "-c", script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if !strings.HasSuffix(string(out), "\n") || len(lines) != 6 {
			t.Fatalf("run %d: want six lines, each ending with a newline (token, ids, 204, 204, user, events), got:\n%s", run, out)
		}
		checks := []struct {
			what string
			ok   bool
		}{
			{"the token", hexToken.MatchString(lines[0])},
			{"the ids", ids.MatchString(lines[1])},
			{"the group moves", lines[2] == "204" && lines[3] == "204"},
			{"the deactivated user", strings.HasPrefix(lines[4], "{") && strings.Contains(lines[4], `"active":false`)},
			{"the audit events", strings.HasPrefix(lines[5], `{"events":[`)},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("run %d: %s is not as the README says:\n%s", run, c.what, out)
			}
		}
		if strings.Contains(string(out), "scimType") || strings.Contains(string(out), `"error"`) {
			t.Errorf("run %d: an error answer:\n%s", run, out)
		}
	}
}

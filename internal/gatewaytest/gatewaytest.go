// Package gatewaytest runs a real Caddy, built with whatever modules the
// test binary imports, for Portcullis integration tests: either in the test
// process (through the Caddyfile adapter and caddy.Load) or as a child
// process that re-executes the test binary as the caddy command, so a test
// can SIGKILL a gateway and restart it. Everything listens on 127.0.0.1.
//
// It also holds what stands around a gateway in a test: a Browser (cookie
// jar, redirects, forms), a Backend that echoes the headers it receives,
// and a real SAML IdP (crewjam's samlidp).
//
// A test package that uses StartProcess or RunCLI must call
// RunChildIfRequested first thing in its TestMain.
package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// The Caddyfile adapter registers itself from this package.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// childArgsEnv carries the caddy command line (JSON) to a re-executed test
// binary.
const childArgsEnv = "PORTCULLIS_GATEWAYTEST_CADDY_ARGS"

// startTimeout bounds how long a gateway may take to answer after start.
const startTimeout = 30 * time.Second

// RunChildIfRequested turns this process into the caddy command when it was
// started by StartProcess or RunCLI; otherwise it returns at once.
func RunChildIfRequested() {
	raw, ok := os.LookupEnv(childArgsEnv)
	if !ok {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintf(os.Stderr, "gatewaytest: bad %s: %v\n", childArgsEnv, err)
		os.Exit(2)
	}
	os.Args = append([]string{"caddy"}, args...)
	caddycmd.Main()
	os.Exit(0)
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	// Below Linux's ephemeral range (32768-60999 by default): a port the
	// kernel hands out for ":0" is also handed to outgoing connections,
	// and under load one of those took it between this check and the
	// gateway's bind ("address already in use"). A random port here can
	// only collide with another test's pick, which the bind check makes
	// unlikely.
	const lo, hi = 20000, 32000
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("finding a free port in %d-%d: every try was taken", lo, hi)
	return 0
}

// Adapt turns a Caddyfile into Caddy's JSON config.
func Adapt(t testing.TB, caddyfile string) []byte {
	t.Helper()
	cfg, err := AdaptErr(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// AdaptErr is Adapt for tests that expect the adapter to refuse a config.
func AdaptErr(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, errors.New("the caddyfile adapter is not registered")
	}
	cfg, _, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, fmt.Errorf("adapting Caddyfile: %w", err)
	}
	return cfg, nil
}

// Load runs the Caddyfile in this process and stops it when the test ends.
// Caddy's data and config directories point into the test's temp dir, so
// nothing touches the user's. The Caddyfile should set `persist_config off`.
// Caddy runs one config per process, so tests that Load cannot be parallel
// (t.Setenv enforces it).
func Load(t testing.TB, caddyfile string) {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if err := caddy.Load(Adapt(t, caddyfile), true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() {
		// Loading a config without apps and without admin endpoint stops
		// the running apps (cleaning up their modules) and the admin server.
		if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
}

// Process is a gateway running in a child process.
type Process struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
	err  error
}

// StartProcess runs `caddy run --config configFile --adapter caddyfile` in a
// child process and waits until the admin API at adminAddr answers. The
// child's data and config directories are in the test's temp dir. The
// process is killed when the test ends if it still runs.
func StartProcess(t testing.TB, configFile, adminAddr string) *Process {
	t.Helper()
	p := &Process{log: new(bytes.Buffer), done: make(chan struct{})}
	p.cmd = childCommand(t, "run", "--config", configFile, "--adapter", "caddyfile")
	p.cmd.Stdout = &lockedWriter{w: p.log}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting gateway: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill(t)
		if t.Failed() {
			t.Logf("gateway output:\n%s", p.Output())
		}
	})
	if err := p.WaitHTTP("http://" + adminAddr + "/config/"); err != nil {
		t.Fatalf("gateway did not come up: %v\noutput:\n%s", err, p.Output())
	}
	return p
}

// Kill sends SIGKILL (no shutdown, no flush) and waits for the process.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("killing gateway: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(startTimeout):
		t.Errorf("gateway did not exit after SIGKILL")
	}
}

// Output is what the process wrote so far.
func (p *Process) Output() string {
	lw := p.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return p.log.String()
}

// RunCLI runs the caddy command with args in a child process and returns
// its stdout and stderr; err is non-nil if it exited non-zero.
func RunCLI(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := childCommand(t, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// childCommand re-executes the test binary as the caddy command.
func childCommand(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	encoded, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(),
		childArgsEnv+"="+string(encoded),
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
	return cmd
}

// WaitHTTP polls url until it answers with any status, the process ends, or
// 30s pass. Use it for the HTTP listeners: the admin API may answer a
// moment before the sites do.
func (p *Process) WaitHTTP(url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return errors.New("process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from %s within %v", url, startTimeout)
}

// WriteFile writes a file into dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ReplaceOnce replaces old with new in s and fails the test unless old
// occurs exactly once, so a test that rewrites a shipped config notices
// when the config changes under it.
func ReplaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("expected %q exactly once in config, found %d times", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// lockedWriter serialises writes from the process's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

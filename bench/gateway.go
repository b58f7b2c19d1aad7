package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gateway is one running gateway process, started from the binary the
// harness built. Both measured configurations (Portcullis and plain
// reverse_proxy) are sites of this one process, so they share the binary,
// the Go runtime and the machine state.
type gateway struct {
	cmd    *exec.Cmd
	output *bytes.Buffer
	dir    string
}

// buildGateway compiles ./cmd/caddy into dir, as a user would.
func buildGateway(dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %w", err)
	}
	return bin, nil
}

// startGateway runs `caddy run` on a Caddyfile written into dir and waits
// until readyURL answers.
func startGateway(bin, dir, caddyfile, readyURL string) (*gateway, error) {
	g, err := newGateway(bin, dir, caddyfile)
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			return g, nil
		}
		if g.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.stop()
	return nil, fmt.Errorf("gateway did not answer %s within 60s; its output:\n%s", readyURL, g.output.String())
}

// newGateway writes caddyfile into dir and prepares `caddy run` on it,
// not started.
func newGateway(bin, dir, caddyfile string) (*gateway, error) {
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	g := &gateway{output: new(bytes.Buffer), dir: dir}
	g.cmd = exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = g.output, g.output
	// Caddy's data directory (and so nothing of the user's) lives in dir.
	g.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	return g, nil
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// stop ends the process gracefully, then for sure.
func (g *gateway) stop() {
	if g.cmd.Process == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the user+system CPU time the process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space-separated. utime and stime are fields 14 and 15.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc/PID/stat values")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// residentMiB is the process's resident set size (VmRSS) in MiB.
func residentMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// freePorts asks the kernel for n distinct free loopback ports: each is
// held open until all are chosen (one asked for and closed at a time, the
// kernel can give the same port twice).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startBackend is the "legacy app" both configurations proxy to: it answers
// a small page naming the identity it was given, like the apps Portcullis
// protects.
func startBackend() (addr string, stop func(), err error) {
	// The backend answers plain requests with the identity it got, and an
	// upgrade (a WebSocket) with a 101 and a tick every tickEvery until the
	// connection closes (see measureLiveClose).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				serveTicker(w)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "hello %q role %q\n", r.Header.Get("X-Remote-User"), r.Header.Get("X-Remote-Role"))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

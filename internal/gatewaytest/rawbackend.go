package gatewaytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RawBackend is an app behind the gateway that keeps the exact bytes of
// every request head it receives. It is a bare TCP listener speaking just
// enough HTTP/1.1 (Content-Length and chunked bodies, keep-alive) that no
// HTTP library parses, merges, re-cases or drops anything on its side: a
// test sees precisely the header lines and cookies the gateway sent.
type RawBackend struct {
	// Addr is host:port, for reverse_proxy.
	Addr string

	mu       sync.Mutex
	requests []RawRequest
}

// RawRequest is one request as it arrived.
type RawRequest struct {
	Conn int    // the connection it came on, counted from 1
	Head string // request line and header lines, each ending in CRLF
}

// Limits of one request, far above what a test sends.
const (
	rawMaxHead = 256 << 10
	rawMaxBody = 4 << 20
	rawIdle    = 30 * time.Second
)

// StartRawBackend runs the backend until the test ends.
func StartRawBackend(t testing.TB) *RawBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &RawBackend{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = true
			connsMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serve(c, n)
				connsMu.Lock()
				delete(conns, c)
				connsMu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	return b
}

// serve answers the requests of one connection until it closes or breaks.
func (b *RawBackend) serve(c net.Conn, n int) {
	defer c.Close()
	br := bufio.NewReader(c)
	for served := 1; ; served++ {
		_ = c.SetDeadline(time.Now().Add(rawIdle))
		head, err := readRawHead(br)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.requests = append(b.requests, RawRequest{Conn: n, Head: head})
		b.mu.Unlock()
		if err := skipRawBody(br, head); err != nil {
			return
		}
		body := fmt.Sprintf("raw backend: request %d on connection %d\n", served, n)
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// readRawHead reads up to and including the empty line that ends a head.
func readRawHead(br *bufio.Reader) (string, error) {
	var head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err != nil {
			return "", err
		}
		if head.Len() > rawMaxHead {
			return "", errors.New("head too large")
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			if head.Len() <= len(line) {
				head.Reset() // a stray empty line between requests
				continue
			}
			return head.String(), nil
		}
	}
}

// skipRawBody reads the body the head announces.
func skipRawBody(br *bufio.Reader, head string) error {
	chunked, length := false, int64(0)
	for _, v := range rawHeaderValues(head, "Transfer-Encoding") {
		if strings.Contains(strings.ToLower(v), "chunked") {
			chunked = true
		}
	}
	for _, v := range rawHeaderValues(head, "Content-Length") {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 || n > rawMaxBody {
			return errors.New("bad Content-Length")
		}
		length = n
	}
	if !chunked {
		_, err := io.CopyN(io.Discard, br, length)
		return err
	}
	for total := int64(0); ; {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 64)
		if err != nil || size < 0 {
			return errors.New("bad chunk size")
		}
		if total += size; total > rawMaxBody {
			return errors.New("body too large")
		}
		if size == 0 {
			// Trailers, up to the empty line.
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return err
				}
				if strings.TrimRight(l, "\r\n") == "" {
					return nil
				}
			}
		}
		if _, err := io.CopyN(io.Discard, br, size+2); err != nil {
			return err
		}
	}
}

// Requests returns every request received so far.
func (b *RawBackend) Requests() []RawRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RawRequest(nil), b.requests...)
}

// Take returns the requests received since the last Take.
func (b *RawBackend) Take() []RawRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.requests
	b.requests = nil
	return r
}

// HeaderValues returns the values of the header lines named name (any
// case), in the order they arrived, exactly as sent (only the surrounding
// whitespace trimmed).
func (r RawRequest) HeaderValues(name string) []string { return rawHeaderValues(r.Head, name) }

// RequestLine is the first line of the head, without CRLF.
func (r RawRequest) RequestLine() string {
	line, _, _ := strings.Cut(r.Head, "\n")
	return strings.TrimRight(line, "\r")
}

func rawHeaderValues(head, name string) []string {
	var out []string
	lines := strings.Split(head, "\n")
	for _, line := range lines[1:] {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && strings.EqualFold(k, name) {
			out = append(out, strings.Trim(v, " \t"))
		}
	}
	return out
}

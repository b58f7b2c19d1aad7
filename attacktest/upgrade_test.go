package attacktest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// h2cSettings is a client's HTTP2-Settings (base64url of an empty SETTINGS
// payload plus one setting), as curl --http2 sends it.
const h2cSettings = "AAMAAABkAAQCAAAAAAIAAAAA"

// upgradeAttempt is what an attacker got for an HTTP/1.1 request with an
// Upgrade header: the first answer and, when the gateway switched
// protocols, the answer to a request sent over the tunnel with forged
// identity headers.
type upgradeAttempt struct {
	status    int
	body      string
	tunnelled *gatewaytest.H2CEcho // what the backend echoed over HTTP/2
}

// tryUpgrade writes a GET of path to the site at base with the given
// Upgrade and Connection headers, HTTP2-Settings and forged identity
// headers, and the session cookie when not empty. On 101 it speaks HTTP/2
// over the connection as a client after an h2c upgrade (preface, SETTINGS,
// then a request on stream 3 with X-Remote-User and X-Remote-Role forged)
// and reads the answer.
func tryUpgrade(base, path, upgrade, connection, session string) (upgradeAttempt, error) {
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return upgradeAttempt{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\nUpgrade: %s\r\nHTTP2-Settings: %s\r\n", path, host, connection, upgrade, h2cSettings)
	fmt.Fprintf(&req, "X-Remote-User: %s-user\r\nX-Remote-Role: %s-role\r\nAccept: application/json\r\n", forgedMarker, forgedMarker)
	if session != "" {
		fmt.Fprintf(&req, "Cookie: %s=%s\r\n", sessionCookie, session)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return upgradeAttempt{}, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return upgradeAttempt{}, fmt.Errorf("reading the answer: %w", err)
	}
	a := upgradeAttempt{status: resp.StatusCode}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a.body = string(b)
		return a, err
	}
	echo, err := h2cRequest(conn, br, host, "/tunnelled")
	if err != nil {
		return a, fmt.Errorf("switched protocols (101), then HTTP/2 over the tunnel: %w", err)
	}
	a.tunnelled = echo
	return a, nil
}

// h2cRequest plays the client's side of an upgraded h2c connection: it
// sends the preface and a request on stream 3 (stream 1 is the upgrade
// request's) with forged identity headers, and returns the backend's echo.
func h2cRequest(conn net.Conn, br *bufio.Reader, authority, path string) (*gatewaytest.H2CEcho, error) {
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return nil, err
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{
		{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path},
		{"x-remote-user", forgedMarker + "-root@acme.example"},
		{"x-remote-role", forgedMarker + "-admin"},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return nil, err
		}
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return nil, err
	}
	var data bytes.Buffer
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return nil, err
				}
			}
		case *http2.GoAwayFrame:
			return nil, fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == 3 {
				return nil, fmt.Errorf("RST_STREAM %v", f.ErrCode)
			}
		case *http2.DataFrame:
			if f.StreamID != 3 {
				continue
			}
			data.Write(f.Data())
			if f.StreamEnded() {
				var e gatewaytest.H2CEcho
				if err := json.Unmarshal(data.Bytes(), &e); err != nil {
					return nil, fmt.Errorf("answer over the tunnel: %v: %q", err, data.String())
				}
				return &e, nil
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 3 && f.StreamEnded() {
				return nil, errors.New("answer over the tunnel without a body")
			}
		}
	}
}

// TestUpgradeSmuggling asks identity routes to switch protocols (h2c, an
// unknown protocol, WebSocket together with h2c): the gateway must serve
// the request as plain HTTP/1.1 with Upgrade, HTTP2-Settings and their
// Connection tokens removed, so the h2c backend, which switches on Upgrade:
// h2c alone, never opens a tunnel through which an attacker would send
// requests with identity headers of his own. The controls show that the
// backend does switch when asked (directly and through a route without
// identity) and that WebSocket upgrades still work on identity routes.
func TestUpgradeSmuggling(t *testing.T) {
	g := startBoundaryGateway(t, nil)
	_, eve := g.signIn(t, g.acme, "eve")

	t.Run("control: the backend switches to h2c and believes the tunnel", func(t *testing.T) {
		for _, c := range []struct{ name, base, path string }{
			{"directly", "http://" + g.h2c.Addr, "/direct"},
			{"through a route without identity", g.acme, "/h2c-open/x"},
		} {
			g.h2c.Take()
			a, err := tryUpgrade(c.base, c.path, "h2c", "Upgrade", "")
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if a.status != http.StatusSwitchingProtocols || a.tunnelled == nil {
				t.Fatalf("%s: %d, tunnel %v: the backend should switch to h2c\n%s", c.name, a.status, a.tunnelled, a.body)
			}
			if a.tunnelled.Proto != "HTTP/2.0" || a.tunnelled.Header.Get("X-Remote-Role") != forgedMarker+"-admin" {
				t.Fatalf("%s: the tunnelled request arrived as %+v", c.name, a.tunnelled)
			}
		}
	})

	t.Run("control: WebSocket upgrades pass identity routes", func(t *testing.T) {
		for _, c := range []struct{ name, path, session, user string }{
			{"protected", "/ws/x", eve, eveName},
			{"public, anonymous", "/ws-public/x", "", ""},
		} {
			name := "upgrade-control-" + strings.ReplaceAll(c.name, " ", "-")
			s := openWS(t, g.acme+c.path+"?name="+name, c.session)
			if err := s.echo("hello"); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			if got := g.ws.Log.Conn(name); got == nil || got.User != c.user {
				t.Errorf("%s: the backend's stream %+v, want user %q", c.name, got, c.user)
			}
			s.close()
		}
	})

	cases := []struct {
		name, upgrade, connection string
	}{
		{"h2c, HTTP2-Settings not in Connection", "h2c", "Upgrade"},
		{"h2c as curl sends it", "h2c", "Upgrade, HTTP2-Settings"},
		{"an unknown protocol", "foo", "Upgrade"},
		{"WebSocket and h2c", "websocket, h2c", "Upgrade"},
		{"h2c and WebSocket", "h2c, websocket", "keep-alive, Upgrade"},
	}
	routes := []struct {
		name, path, session string
		status              int
	}{
		{"protected route, signed in", "/h2c/x", eve, http.StatusOK},
		{"public route, anonymous", "/h2c-public/x", "", http.StatusOK},
		{"public route, signed in", "/h2c-public/x", eve, http.StatusOK},
	}
	for _, r := range routes {
		for _, c := range cases {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				g.h2c.Take()
				a, err := tryUpgrade(g.acme, r.path, c.upgrade, c.connection, r.session)
				seen := g.h2c.Take()
				if err != nil {
					t.Errorf("the attacker's request: %v", err)
				}
				if a.status == http.StatusSwitchingProtocols {
					t.Errorf("the gateway switched protocols (101 %q): the upgrade tunnelled to the backend", c.upgrade)
				}
				if a.tunnelled != nil {
					t.Errorf("over the tunnel the backend believed X-Remote-User %q, X-Remote-Role %q (forged)",
						a.tunnelled.Header.Get("X-Remote-User"), a.tunnelled.Header.Get("X-Remote-Role"))
				}
				if err == nil && a.status != r.status {
					t.Errorf("status %d, want %d (plain HTTP/1.1)\n%.300s", a.status, r.status, a.body)
				}
				if len(seen) != 1 {
					t.Errorf("the backend got %d requests, want the one plain HTTP/1.1 request", len(seen))
				}
				for _, e := range seen {
					if e.Proto != "HTTP/1.1" {
						t.Errorf("the backend got %s %s over %s", e.Method, e.URI, e.Proto)
					}
					for _, h := range []string{"Upgrade", "Http2-Settings"} {
						if v, ok := e.Header[h]; ok {
							t.Errorf("the backend got %s: %q", h, v)
						}
					}
					for _, v := range e.Header["Connection"] {
						if l := strings.ToLower(v); strings.Contains(l, "upgrade") || strings.Contains(l, "http2-settings") {
							t.Errorf("the backend got Connection: %q", v)
						}
					}
					for k, vs := range e.Header {
						for _, v := range vs {
							if strings.Contains(v, forgedMarker) {
								t.Errorf("the backend got the forged %s: %q", k, v)
							}
						}
					}
				}
			})
		}
	}
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The live-connection figure: how soon a WebSocket opened through the
// gateway is closed once SCIM deactivates its user. The backend ticks over
// the upgraded connection; the harness deactivates the user and times the
// close as the client sees it, from the PATCH's 2xx.

// tickEvery is how often the backend writes on an upgraded connection.
const tickEvery = 20 * time.Millisecond

// liveCloseSamples is how many WebSockets are opened and revoked.
const liveCloseSamples = 10

// streamerName is the userName of the i-th WebSocket user.
func streamerName(i int) string { return fmt.Sprintf("streamer%02d@bench.example", i) }

// serveTicker takes over an upgrade request's connection and ticks on it.
func serveTicker(w http.ResponseWriter) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	// Bounded: a connection nobody closes ends after a minute.
	for i := 0; i < int(time.Minute/tickEvery); i++ {
		time.Sleep(tickEvery)
		if _, err := fmt.Fprintf(conn, "tick %d\n", i); err != nil {
			return
		}
	}
}

// liveCloseResult is the close delay over the samples.
type liveCloseResult struct {
	Samples  int     `json:"samples"`
	P50ms    float64 `json:"p50_ms_after_2xx"`
	MaxMs    float64 `json:"max_ms_after_2xx"`
	Relayed  int     `json:"ticks_relayed_after_2xx_max"`
	FromSend float64 `json:"p50_ms_from_patch_sent"`
}

// measureLiveClose opens a WebSocket per sample as a fresh user,
// deactivates the user and times the close.
func (e *benchEnv) measureLiveClose(scim *scimClient) (*liveCloseResult, error) {
	var afterAck, fromSend []float64
	maxRelayed := 0
	for i := 0; i < liveCloseSamples; i++ {
		name := streamerName(i)
		cookie, id, err := e.signIn(scim, name, name)
		if err != nil {
			return nil, err
		}
		conn, br, err := e.openWebSocket(cookie)
		if err != nil {
			return nil, err
		}
		sent := time.Now()
		if _, err := scim.do(http.MethodPatch, "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}},
		}, nil); err != nil {
			conn.Close()
			return nil, err
		}
		acked := time.Now()
		relayed := 0
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := br.ReadString('\n'); err != nil {
				break
			}
			relayed++
		}
		closed := time.Now()
		conn.Close()
		if closed.Sub(acked) >= 10*time.Second {
			return nil, fmt.Errorf("a WebSocket of a deactivated user was still open 10 s later")
		}
		afterAck = append(afterAck, ms(closed.Sub(acked)))
		fromSend = append(fromSend, ms(closed.Sub(sent)))
		// Ticks already in flight when the PATCH was answered may still
		// arrive; count how many came after.
		maxRelayed = max(maxRelayed, relayed)
	}
	sort.Float64s(afterAck)
	sort.Float64s(fromSend)
	return &liveCloseResult{
		Samples:  len(afterAck),
		P50ms:    afterAck[len(afterAck)/2],
		MaxMs:    afterAck[len(afterAck)-1],
		Relayed:  maxRelayed,
		FromSend: fromSend[len(fromSend)/2],
	}, nil
}

// openWebSocket opens an upgraded connection through the gateway as the
// cookie's session and waits for its first tick.
func (e *benchEnv) openWebSocket(cookie string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gatewayURL, "http://"))
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		strings.TrimPrefix(e.gatewayURL, "http://"), cookie)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		conn.Close()
		return nil, nil, fmt.Errorf("WebSocket through the gateway: %d %s", resp.StatusCode, b)
	}
	if _, err := br.ReadString('\n'); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("no tick over the WebSocket: %v", err)
	}
	return conn, br, nil
}

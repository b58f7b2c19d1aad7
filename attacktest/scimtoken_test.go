package attacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// The SCIM failure limit per client address, as scimhandler documents it:
// a burst of failures, then one more per refill interval.
const (
	scimFailureBurst  = 10
	scimFailureRefill = 6 * time.Second
)

// clientFrom returns a client whose connections come from the loopback
// address ip (any 127.0.0.0/8 address is the machine's own), so a test can
// play two client addresses.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// scimGet lists users with the given Authorization header ("" for none).
func scimGet(t *testing.T, c *http.Client, base, authorization string) answer {
	t.Helper()
	a, err := tryScimGet(c, base, authorization)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryScimGet is scimGet for goroutines other than the test's.
func tryScimGet(c *http.Client, base, authorization string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/Users?count=1", nil)
	if err != nil {
		return answer{}, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func randomToken(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestSCIMTokenGuessing guesses acme's SCIM token many times from one
// client address: wrong tokens get 401, then 429 with Retry-After once the
// address is over its limit; the audit log records the rejections with the
// address and never a token; another address is not limited; and the IdP's
// correct token gets 200 before, during and after the attack, also from the
// attacker's own address (the IdP is never locked out).
func TestSCIMTokenGuessing(t *testing.T) {
	g := startGateway(t)
	token := g.issueSCIMToken(t, "acme")
	base := g.acme + "/scim/v2/acme"
	attacker := clientFrom("127.0.0.1")
	idp := clientFrom("127.0.0.1") // the IdP shares the attacker's address (a NAT)
	bystander := clientFrom("127.0.0.2")

	if a := scimGet(t, idp, base, "Bearer "+token); a.status != http.StatusOK {
		t.Fatalf("the IdP before the attack: %d %s", a.status, a.body)
	}

	// Guesses of every shape: random tokens, the token's near misses, other
	// schemes, no header at all.
	guesses := []string{
		"Bearer " + token[:len(token)-1],
		"Bearer " + token + "x",
		"Bearer " + strings.ToUpper(token),
		"bearer",
		"Basic " + token,
		"",
		"Bearer " + strings.Repeat("A", 4096),
	}
	var sent []string // every guessed Authorization value
	var statuses []int
	started := time.Now()
	for i := 0; i < 40; i++ {
		guess := "Bearer " + randomToken(t)
		if i < len(guesses) {
			guess = guesses[i]
		}
		sent = append(sent, guess)
		a := scimGet(t, attacker, base, guess)
		statuses = append(statuses, a.status)
		switch a.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			secs, err := strconv.Atoi(a.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > int(scimFailureRefill/time.Second) {
				t.Errorf("guess %d: 429 with Retry-After %q", i, a.header.Get("Retry-After"))
			}
			if !strings.Contains(a.body, `"status":"429"`) {
				t.Errorf("guess %d: 429 without a SCIM error body: %s", i, a.body)
			}
		default:
			t.Fatalf("guess %d (%.20q): %d %s", i, guess, a.status, a.body)
		}
		if i < scimFailureBurst && a.status != http.StatusUnauthorized {
			t.Errorf("guess %d: %d, want 401 within the burst of %d", i, a.status, scimFailureBurst)
		}
		// During the attack, the IdP's token still works, from the same
		// address.
		if i%5 == 4 {
			if a := scimGet(t, idp, base, "Bearer "+token); a.status != http.StatusOK {
				t.Fatalf("the IdP during the attack (after guess %d): %d %s", i, a.status, a.body)
			}
		}
	}
	// Over 40 guesses the bucket refills by at most elapsed/refill, so at
	// least the rest must have been refused with 429.
	limited := 0
	for _, s := range statuses {
		if s == http.StatusTooManyRequests {
			limited++
		}
	}
	maxAllowed := scimFailureBurst + int(time.Since(started)/scimFailureRefill) + 1
	if limited < len(statuses)-maxAllowed {
		t.Errorf("%d of %d guesses got 429 (statuses %v), want at least %d", limited, len(statuses), statuses, len(statuses)-maxAllowed)
	}

	// Another address is counted on its own: its wrong token gets 401.
	if a := scimGet(t, bystander, base, "Bearer "+randomToken(t)); a.status != http.StatusUnauthorized {
		t.Errorf("a wrong token from another address: %d, want 401", a.status)
	}

	// Many guesses at once while the IdP works: the IdP always gets 200,
	// the attacker never anything but 401 or 429.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				guess := "Bearer " + randomToken(t)
				a, err := tryScimGet(attacker, base, guess)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent = append(sent, guess)
				mu.Unlock()
				if a.status != http.StatusTooManyRequests && a.status != http.StatusUnauthorized {
					t.Errorf("concurrent guess: %d %s", a.status, a.body)
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		if a := scimGet(t, idp, base, "Bearer "+token); a.status != http.StatusOK {
			t.Errorf("the IdP during the concurrent attack: %d %s", a.status, a.body)
		}
	}
	wg.Wait()

	// After the attack, the IdP's token works at once.
	if a := scimGet(t, idp, base, "Bearer "+token); a.status != http.StatusOK {
		t.Fatalf("the IdP after the attack: %d %s", a.status, a.body)
	}

	// The audit log: token.rejected with the attacker's address, no token.
	rejected, _ := g.events(t, "acme", storage.EventTokenRejected)
	if len(rejected) == 0 {
		t.Fatal("no token.rejected event")
	}
	for _, e := range rejected {
		t.Logf("token.rejected: actor %q reason %q", e.Actor, e.Reason)
		if !strings.Contains(e.Reason, "127.0.0.1") {
			t.Errorf("token.rejected without the client address: %q", e.Reason)
		}
	}
	_, all := g.events(t, "acme")
	secrets := append([]string{token}, sent...)
	for _, s := range secrets {
		s = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, "Bearer "), "Basic "))
		if len(s) >= 16 && strings.Contains(all, s) {
			t.Errorf("the audit log holds a presented token: %.24q...", s)
		}
	}
}

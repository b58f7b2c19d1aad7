package gatewaytest

import (
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// sessionEndMaker makes crewjam's default assertions and, while a lifetime
// is set, adds SessionNotOnOrAfter to their AuthnStatement, as IdPs such
// as ADFS and Okta do to cap the SP's session: the only way a test can end
// a session within seconds (the gateway's own timeouts are a minute at
// least).
type sessionEndMaker struct {
	mu       sync.Mutex
	lifetime time.Duration
	last     time.Time
}

func (m *sessionEndMaker) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lifetime <= 0 || req.Assertion == nil || len(req.Assertion.AuthnStatements) == 0 {
		return nil
	}
	end := time.Now().Add(m.lifetime).UTC()
	req.Assertion.AuthnStatements[0].SessionNotOnOrAfter = &end
	m.last = end
	return nil
}

// SetSessionLifetime makes the IdP's assertions from now on say that the
// SP's session must end d after sign-in (SessionNotOnOrAfter); 0 stops it.
func (i *SAMLIdP) SetSessionLifetime(d time.Duration) {
	i.sessions.mu.Lock()
	i.sessions.lifetime = d
	i.sessions.mu.Unlock()
}

// LastSessionEnd is the SessionNotOnOrAfter of the latest assertion that
// carried one.
func (i *SAMLIdP) LastSessionEnd() time.Time {
	i.sessions.mu.Lock()
	defer i.sessions.mu.Unlock()
	return i.sessions.last
}

package sso

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/portcullis/portcullis/pages"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// samlSP is the SAML service provider of one tenant.
//
// What crewjam/saml's ServiceProvider.ParseResponse checks (v0.6.3), and
// what this package adds:
//   - signature: the Response or every Assertion must carry a valid
//     signature by a certificate from the IdP metadata (a present but invalid
//     one always fails); values are read from what the signature covers.
//   - Destination of the Response (when signed or present) equals the ACS
//     URL; every bearer SubjectConfirmationData names the ACS as Recipient
//     and has not expired.
//   - InResponseTo of the Response and of the bearer confirmation is one of
//     the request ids passed in: here exactly the one request id stored in
//     this browser's login flow, which is deleted on use (consumeFlow).
//   - Issuer equals the IdP entity id; Status is Success; IssueInstant is
//     within MaxIssueDelay (90 s) and not in the future.
//   - Conditions NotBefore / NotOnOrAfter with MaxClockSkew (180 s, the
//     library's package default, which is not changed here because it is
//     process-wide); this package additionally applies its own tighter
//     samlClockSkew to both bounds.
//   - AudienceRestriction must be present and name EntityID.
//   - an AuthnStatement is required.
//   - ReplayCache: this package supplies one backed by the store
//     (storeReplayCache), so a replayed assertion fails after a restart and
//     on every replica sharing the store.
//
// Added here: the browser binding of the flow (RelayState must equal the
// flow cookie), the refusal of the Artifact binding and, unless allowed, of
// encrypted assertions, SHA-1 signatures are refused, and the tighter skew.
type samlSP struct {
	s    *Service
	cfg  *SAMLConfig
	key  *rsa.PrivateKey // set by newSAMLSP or, from the store, by start
	cert *x509.Certificate
	// idp is the IdP's metadata: nil until first loaded (sign-in answers
	// 503 until then); a failed refresh keeps the last good copy.
	idp *idpLink[saml.EntityDescriptor]
}

const (
	recordSPKey     = "sso.saml_sp_key"
	recordReplay    = "sso.saml_replay"
	maxSAMLBody     = 1 << 20 // a SAML response with many groups is ~100 KiB
	samlClockSkew   = time.Minute
	protocolSAMLOut = "saml-logout"
)

// Default attribute names, tried in order when none is configured. They
// cover Microsoft Entra ID (claims URIs), Okta and Google Workspace (names
// chosen in the app's attribute mapping, commonly these), and the LDAP/
// eduPerson OIDs that Shibboleth-style IdPs (and samlidp) send.
var (
	defaultEmailAttributes = []string{
		"email", "mail", "emailAddress", "Email", "User.Email",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3",
	}
	defaultNameAttributes = []string{
		"displayName", "name", "fullName", "cn",
		"http://schemas.microsoft.com/identity/claims/displayname",
		"urn:oid:2.16.840.1.113730.3.1.241",
		"urn:oid:2.5.4.3",
	}
	defaultGroupsAttributes = []string{
		"groups", "Groups", "memberOf", "group",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
		"http://schemas.xmlsoap.org/claims/Group",
		"urn:oid:1.3.6.1.4.1.5923.1.1.1.1", // eduPersonAffiliation
	}
	// Names whose value is a login name worth matching to userName.
	userNameAttributes = []string{
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", // Entra UPN
		"uid", "urn:oid:0.9.2342.19200300.100.1.1",
	}
)

// newSAMLSP prepares the service provider without reaching the network or
// the store: a configured SP key pair is parsed, and metadata given by
// file or by hand is read now, so that their errors show at once.
func newSAMLSP(s *Service, cfg *SAMLConfig) (*samlSP, error) {
	p := &samlSP{s: s, cfg: cfg}
	if cfg.SPKeyPEM != "" {
		var err error
		if p.key, p.cert, err = parseKeyPair([]byte(cfg.SPKeyPEM), []byte(cfg.SPCertPEM)); err != nil {
			return nil, err
		}
	}
	what := "saml metadata at " + cfg.IDPMetadataURL
	switch {
	case cfg.IDPMetadataFile != "":
		what = "saml metadata file " + cfg.IDPMetadataFile
	case cfg.IDPMetadataURL == "":
		what = "saml IdP settings"
	}
	refresh := cfg.IDPMetadataRefresh
	if s.metadataRefresh > 0 {
		refresh = s.metadataRefresh
	}
	p.idp = newIDPLink(what, p.loadIDPMetadata, refresh, s.retry, s.log)
	if cfg.IDPMetadataURL != "" {
		u, err := url.Parse(cfg.IDPMetadataURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("sso: saml metadata URL %q is not an http(s) URL", cfg.IDPMetadataURL)
		}
		return p, nil
	}
	md, err := p.loadIDPMetadata(context.Background())
	if err != nil {
		return nil, err
	}
	p.idp.set(md)
	return p, nil
}

// start loads (or, the first time, generates) the SP key from the store
// when none is configured, and keeps the IdP metadata from a URL or file
// up to date until bg ends.
func (p *samlSP) start(ctx, bg context.Context) error {
	if p.key == nil {
		var err error
		if p.key, p.cert, err = loadOrCreateSPKey(ctx, p.s); err != nil {
			return err
		}
	}
	if p.cfg.IDPMetadataURL != "" || p.cfg.IDPMetadataFile != "" {
		p.s.wg.Add(1)
		go func() {
			defer p.s.wg.Done()
			p.idp.run(bg)
		}()
	}
	return nil
}

// loadIDPMetadata reads the IdP from its URL, its file, or the hand-made
// settings, and checks it can be used.
func (p *samlSP) loadIDPMetadata(ctx context.Context) (*saml.EntityDescriptor, error) {
	cfg := p.cfg
	var md *saml.EntityDescriptor
	var err error
	switch {
	case cfg.IDPMetadataURL != "":
		u, perr := url.Parse(cfg.IDPMetadataURL)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("sso: saml metadata URL %q is not an http(s) URL", cfg.IDPMetadataURL)
		}
		md, err = samlsp.FetchMetadata(ctx, p.s.client, *u)
	case cfg.IDPMetadataFile != "":
		var data []byte
		data, err = os.ReadFile(cfg.IDPMetadataFile)
		if err == nil {
			md, err = samlsp.ParseMetadata(data)
		}
	default:
		md, err = manualIDPMetadata(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("sso: saml IdP metadata: %w", err)
	}
	if len(md.IDPSSODescriptors) == 0 {
		return nil, errors.New("sso: saml IdP metadata has no IDPSSODescriptor")
	}
	sp := saml.ServiceProvider{IDPMetadata: md}
	if sp.GetSSOBindingLocation(saml.HTTPRedirectBinding) == "" && sp.GetSSOBindingLocation(saml.HTTPPostBinding) == "" {
		return nil, errors.New("sso: saml IdP offers no HTTP-Redirect or HTTP-POST SingleSignOnService")
	}
	return md, nil
}

func manualIDPMetadata(cfg *SAMLConfig) (*saml.EntityDescriptor, error) {
	cert, err := parseCertificatePEM([]byte(cfg.IDPCertificatePEM))
	if err != nil {
		return nil, fmt.Errorf("idp certificate: %w", err)
	}
	for _, v := range []string{cfg.IDPSSOURL, cfg.IDPSLOURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%q is not an absolute http(s) URL", v)
		}
	}
	desc := saml.IDPSSODescriptor{
		SSODescriptor: saml.SSODescriptor{
			RoleDescriptor: saml.RoleDescriptor{
				ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
				KeyDescriptors: []saml.KeyDescriptor{{
					Use: "signing",
					KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
						{Data: base64.StdEncoding.EncodeToString(cert.Raw)},
					}}},
				}},
			},
		},
		SingleSignOnServices: []saml.Endpoint{
			{Binding: saml.HTTPRedirectBinding, Location: cfg.IDPSSOURL},
			{Binding: saml.HTTPPostBinding, Location: cfg.IDPSSOURL},
		},
	}
	if cfg.IDPSLOURL != "" {
		desc.SingleLogoutServices = []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: cfg.IDPSLOURL}}
	}
	return &saml.EntityDescriptor{EntityID: cfg.IDPEntityID, IDPSSODescriptors: []saml.IDPSSODescriptor{desc}}, nil
}

// serviceProvider builds the crewjam ServiceProvider for a request: the
// ACS, SLO and metadata URLs come from the external URL of the gateway.
// Its IDPMetadata is nil while the IdP was never reached; callers that
// need it check samlSP.idp first.
func (p *samlSP) serviceProvider(ep *endpoints, r *http.Request) *saml.ServiceProvider {
	acs, _ := url.Parse(ep.url(r, PathSAMLACS))
	slo, _ := url.Parse(ep.url(r, PathSAMLSLO))
	md, _ := url.Parse(ep.url(r, PathSAMLMetadata))
	sp := &saml.ServiceProvider{
		EntityID:                         p.cfg.EntityID,
		Key:                              p.key,
		Certificate:                      p.cert,
		MetadataURL:                      *md,
		AcsURL:                           *acs,
		SloURL:                           *slo,
		IDPMetadata:                      p.idp.get(),
		AuthnNameIDFormat:                saml.UnspecifiedNameIDFormat,
		LogoutSignatureMethod:            dsig.RSASHA256SignatureMethod,
		LogoutBindings:                   []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding},
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		RejectSHA1Signatures:             true,
		ReplayCache:                      &storeReplayCache{s: p.s, ctx: r.Context()},
		HTTPClient:                       p.s.client,
	}
	if p.cfg.NameIDFormat != "" {
		sp.AuthnNameIDFormat = saml.NameIDFormat(p.cfg.NameIDFormat)
	}
	if p.cfg.SignAuthnRequests {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return sp
}

// samlLogin sends an AuthnRequest (HTTP-Redirect, or HTTP-POST when the IdP
// offers only that) whose id is kept in the browser's login flow.
func (ep *endpoints) samlLogin(w http.ResponseWriter, r *http.Request, returnPath string) {
	s := ep.s
	if s.saml.idp.get() == nil {
		ep.idpUnavailable(w, r)
		return
	}
	sp := s.saml.serviceProvider(ep, r)
	binding := saml.HTTPRedirectBinding
	loc := sp.GetSSOBindingLocation(binding)
	if loc == "" {
		binding = saml.HTTPPostBinding
		loc = sp.GetSSOBindingLocation(binding)
	}
	req, err := sp.MakeAuthenticationRequest(loc, binding, saml.HTTPPostBinding)
	if err != nil {
		s.serverError(w, r, "make saml AuthnRequest", err)
		return
	}
	f := &loginFlow{Protocol: protocolSAML, ReturnPath: returnPath, RequestID: req.ID, ACSURL: sp.AcsURL.String()}
	relayState, err := s.startFlow(w, r, ep.prefix, f, true)
	if err != nil {
		s.serverError(w, r, "start saml sign-in", err)
		return
	}
	if binding == saml.HTTPRedirectBinding {
		u, err := req.Redirect(relayState, sp)
		if err != nil {
			s.serverError(w, r, "encode saml AuthnRequest", err)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	writeAutoPost(w, func(nonce string) []byte { return req.PostWithNonce(relayState, nonce) })
}

// writeAutoPost serves a self-submitting form under a CSP that allows only
// its own script.
func writeAutoPost(w http.ResponseWriter, form func(nonce string) []byte) {
	nonce := newRandom()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action *; frame-ancestors 'none'")
	_, _ = w.Write([]byte(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signing in</title></head><body>`))
	_, _ = w.Write(form(nonce))
	_, _ = w.Write([]byte(`</body></html>`))
}

// samlACS is the Assertion Consumer Service (HTTP-POST binding).
func (ep *endpoints) samlACS(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	// Checked before the flow is consumed, so that posting the same
	// response again works once the metadata is in.
	if s.saml.idp.get() == nil {
		ep.idpUnavailable(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSAMLBody)
	if err := r.ParseForm(); err != nil {
		ep.refuse(w, r, protocolSAML, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "unreadable ACS form: " + truncate(err.Error(), 128)}, nil)
		return
	}
	if r.PostForm.Get("SAMLart") != "" || r.URL.Query().Get("SAMLart") != "" {
		ep.refuse(w, r, protocolSAML, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "the HTTP-Artifact binding is not accepted"}, nil)
		return
	}
	rawResponse := r.PostForm.Get("SAMLResponse")
	if rawResponse == "" {
		ep.refuse(w, r, protocolSAML, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "ACS request without SAMLResponse"}, nil)
		return
	}
	f, err := s.consumeFlow(w, r, ep.prefix, r.PostForm.Get("RelayState"))
	if err != nil {
		ep.flowFailed(w, r, protocolSAML, err)
		return
	}
	if f.Protocol != protocolSAML || f.RequestID == "" {
		ep.refuse(w, r, protocolSAML, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "flow is not a saml sign-in"}, nil)
		return
	}
	id, ref := s.saml.verifyResponse(ep, r, f)
	if ref != nil {
		ep.refuse(w, r, protocolSAML, ref, nil)
		return
	}
	ep.finishSignIn(w, r, id, f.ReturnPath)
}

// verifyResponse checks the posted SAMLResponse against the flow's request
// id and turns the assertion into an identity.
func (p *samlSP) verifyResponse(ep *endpoints, r *http.Request, f *loginFlow) (*identity, *refusal) {
	refused := func(format string, args ...any) (*identity, *refusal) {
		return nil, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: fmt.Sprintf(format, args...)}
	}
	if !p.cfg.AllowEncryptedAssertions {
		enc, err := hasEncryptedAssertion(r.PostForm.Get("SAMLResponse"))
		if err != nil {
			return refused("malformed SAMLResponse: %v", err)
		}
		if enc {
			return refused("encrypted assertions are not allowed for this tenant")
		}
	}
	sp := p.serviceProvider(ep, r)
	if f.ACSURL != "" && f.ACSURL != sp.AcsURL.String() {
		return refused("response arrived at %s, but the request named %s", sp.AcsURL.String(), f.ACSURL)
	}
	assertion, err := sp.ParseResponse(r, []string{f.RequestID})
	if err != nil {
		return refused("saml response rejected: %s", describeSAMLError(err))
	}
	now := p.s.now()
	if c := assertion.Conditions; c != nil {
		if !c.NotBefore.IsZero() && now.Add(samlClockSkew).Before(c.NotBefore) {
			return refused("assertion not yet valid (NotBefore %s)", c.NotBefore.UTC().Format(time.RFC3339))
		}
		if !c.NotOnOrAfter.IsZero() && !now.Before(c.NotOnOrAfter.Add(samlClockSkew)) {
			return refused("assertion expired (NotOnOrAfter %s)", c.NotOnOrAfter.UTC().Format(time.RFC3339))
		}
	}
	return p.identityFrom(assertion), nil
}

// describeSAMLError unwraps crewjam's InvalidResponseError, whose Error()
// hides the reason, for the audit log. The reason never contains the
// response itself.
func describeSAMLError(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		err = ire.PrivateErr
	}
	if errors.Is(err, saml.ErrAssertionReplayed) {
		return "assertion replayed: " + truncate(err.Error(), 256)
	}
	return truncate(err.Error(), 512)
}

// hasEncryptedAssertion looks for an EncryptedAssertion in a base64
// SAMLResponse. Malformed input is an error; crewjam parses it properly
// afterwards, this only decides whether to let it.
func hasEncryptedAssertion(b64 string) (bool, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false, errors.New("not base64")
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(raw); err != nil {
		return false, errors.New("not XML")
	}
	if doc.Root() == nil {
		return false, errors.New("no root element")
	}
	var walk func(*etree.Element) bool
	walk = func(e *etree.Element) bool {
		if e.Tag == "EncryptedAssertion" {
			return true
		}
		for _, c := range e.ChildElements() {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(doc.Root()), nil
}

// identityFrom reads the person out of a verified assertion.
func (p *samlSP) identityFrom(a *saml.Assertion) *identity {
	attrs := map[string][]string{}
	friendly := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				if v.Nil {
					continue
				}
				attrs[at.Name] = append(attrs[at.Name], strings.TrimSpace(v.Value))
				if at.FriendlyName != "" {
					friendly[at.FriendlyName] = append(friendly[at.FriendlyName], strings.TrimSpace(v.Value))
				}
			}
		}
	}
	// lookup takes the configured name, or the first default present, by
	// Name and then by FriendlyName.
	lookup := func(configured string, defaults []string) ([]string, bool) {
		names := defaults
		if configured != "" {
			names = []string{configured}
		}
		for _, n := range names {
			if v, ok := attrs[n]; ok {
				return v, true
			}
		}
		for _, n := range names {
			if v, ok := friendly[n]; ok {
				return v, true
			}
		}
		return nil, false
	}
	first := func(v []string, _ bool) string {
		for _, s := range v {
			if s != "" {
				return s
			}
		}
		return ""
	}
	// Emails in the assertion count as verified: it is signed by the IdP
	// the tenant configured, which is the tenant's own directory, and SAML
	// has no per-attribute verified flag. A tenant that does not trust
	// its IdP's email attribute points email_attribute elsewhere.
	id := &identity{protocol: protocolSAML, issuer: p.idp.get().EntityID}
	if a.Issuer.Value != "" {
		id.issuer = a.Issuer.Value
	}
	if n := a.Subject.NameID; n != nil {
		id.subject, id.nameID, id.nameIDFormat = n.Value, n.Value, n.Format
		// A transient NameID changes at every sign-in: nothing to link.
		if n.Format == string(saml.TransientNameIDFormat) {
			id.subject = ""
		}
		// Transient and persistent NameIDs are opaque: useless as a userName.
		if n.Format != string(saml.TransientNameIDFormat) && n.Format != string(saml.PersistentNameIDFormat) {
			id.userNames = append(id.userNames, n.Value)
		}
		if n.Format == string(saml.EmailAddressNameIDFormat) {
			id.email = n.Value
		}
	}
	for _, n := range userNameAttributes {
		if v := first(attrs[n], true); v != "" {
			id.userNames = append(id.userNames, v)
		}
	}
	if e := first(lookup(p.cfg.EmailAttribute, defaultEmailAttributes)); e != "" {
		id.email = e
	}
	id.name = first(lookup(p.cfg.NameAttribute, defaultNameAttributes))
	id.groups, _ = lookup(p.cfg.GroupsAttribute, defaultGroupsAttributes)
	if len(a.AuthnStatements) > 0 {
		st := a.AuthnStatements[0]
		id.sessionIndex = st.SessionIndex
		if st.SessionNotOnOrAfter != nil {
			id.notOnOrAfter = *st.SessionNotOnOrAfter
		}
	}
	return id
}

// samlMetadata serves this SP's metadata for the IdP administrator.
func (ep *endpoints) samlMetadata(w http.ResponseWriter, r *http.Request) {
	sp := ep.s.saml.serviceProvider(ep, r)
	md := sp.Metadata()
	if !ep.s.saml.cfg.AllowEncryptedAssertions {
		for i := range md.SPSSODescriptors {
			kds := md.SPSSODescriptors[i].KeyDescriptors[:0]
			for _, kd := range md.SPSSODescriptors[i].KeyDescriptors {
				if kd.Use != "encryption" {
					kds = append(kds, kd)
				}
			}
			md.SPSSODescriptors[i].KeyDescriptors = kds
		}
	}
	buf, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		ep.s.serverError(w, r, "marshal saml metadata", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Content-Disposition", `inline; filename="sp-metadata.xml"`)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(buf)
}

// samlLogoutRedirect starts SP-initiated Single Logout for an ended
// session: a signed LogoutRequest (HTTP-Redirect) whose id is kept in a
// flow, so that the IdP's LogoutResponse can be matched. "" if the IdP
// offers no HTTP-Redirect SingleLogoutService.
func (ep *endpoints) samlLogoutRedirect(w http.ResponseWriter, r *http.Request, sess *storage.Session) (string, error) {
	s := ep.s
	if s.saml.idp.get() == nil {
		return "", nil // the IdP was never reached: local sign-out only
	}
	sp := s.saml.serviceProvider(ep, r)
	loc := sp.GetSLOBindingLocation(saml.HTTPRedirectBinding)
	if loc == "" {
		return "", nil
	}
	opts := []saml.LogoutRequestOption{func(req *saml.LogoutRequest) {
		// Name the subject exactly as the IdP named it.
		if req.NameID != nil {
			req.NameID.Format = sess.NameIDFormat
		}
	}}
	if sess.SessionIndex != "" {
		opts = append(opts, saml.WithSessionIndex(sess.SessionIndex))
	}
	req, err := sp.MakeLogoutRequest(loc, sess.NameID, opts...)
	if err != nil {
		return "", err
	}
	relayState, err := s.startFlow(w, r, ep.prefix, &loginFlow{Protocol: protocolSAMLOut, RequestID: req.ID, ReturnPath: "/"}, true)
	if err != nil {
		return "", err
	}
	u, err := sp.RedirectLogoutRequestURL(req, relayState)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// sloFailedPage answers a Single Logout message that does not check out.
var sloFailedPage = pages.Data{Kind: pages.SignInFailed, Status: http.StatusBadRequest, Code: "slo_failed",
	Title:   "Sign-out not completed",
	Message: "The sign-out message from your identity provider could not be verified.",
	Hint:    "Close the browser to end your session, or sign out again from the application.", AppURL: "/"}

// samlSLO takes the IdP's LogoutResponse to our LogoutRequest, or a
// LogoutRequest from the IdP (IdP-initiated logout), on either binding.
func (ep *endpoints) samlSLO(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	if s.saml.idp.get() == nil {
		ep.idpUnavailable(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSAMLBody)
	if err := r.ParseForm(); err != nil {
		s.writePage(w, r, sloFailedPage)
		return
	}
	sp := s.saml.serviceProvider(ep, r)
	switch {
	case r.Form.Get("SAMLResponse") != "":
		f, err := s.consumeFlow(w, r, ep.prefix, r.Form.Get("RelayState"))
		if err == nil && f.Protocol == protocolSAMLOut {
			if resp, err := sp.ParseLogoutResponse(r, []string{f.RequestID}); err != nil {
				s.log.Warn("saml LogoutResponse rejected", zap.String("reason", describeSAMLError(err)))
			} else if resp.Status.StatusCode.Value != saml.StatusSuccess {
				s.log.Warn("saml IdP did not complete single logout", zap.String("status", resp.Status.StatusCode.Value))
			}
		} else {
			s.log.Warn("saml LogoutResponse without a matching logout flow")
		}
		// The local session ended before the browser went to the IdP.
		ep.signedOutPage(w, r, nil)
	case r.Form.Get("SAMLRequest") != "":
		req, err := sp.ValidateLogoutRequest(r)
		if err != nil {
			s.log.Warn("saml LogoutRequest rejected", zap.String("reason", describeSAMLError(err)))
			s.writePage(w, r, sloFailedPage)
			return
		}
		if err := s.endSAMLSessions(r, req); err != nil {
			s.serverError(w, r, "end sessions for saml LogoutRequest", err)
			return
		}
		s.clearSessionCookie(w, r)
		u, err := sp.MakeRedirectLogoutResponse(req.ID, r.Form.Get("RelayState"))
		if err != nil {
			s.serverError(w, r, "make saml LogoutResponse", err)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
	default:
		s.writePage(w, r, sloFailedPage)
	}
}

// endSAMLSessions ends the sessions an IdP LogoutRequest names: those of
// the user matched by the NameID (as userName or email) that carry that
// NameID and, if the request lists any, one of its SessionIndexes.
func (s *Service) endSAMLSessions(r *http.Request, req *saml.LogoutRequest) error {
	if req.NameID == nil || req.NameID.Value == "" {
		return nil
	}
	nameID := req.NameID.Value
	indexes := map[string]bool{}
	for _, si := range req.AllSessionIndexes() {
		indexes[si.Value] = true
	}
	ctx, cancel := auditContext(r)
	defer cancel()
	return s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		var users []*storage.User
		if u, err := tx.UserByUserName(nameID); err == nil {
			users = append(users, u)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		byEmail, err := tx.UsersByEmail(nameID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		users = append(users, byEmail...)
		done := map[string]bool{}
		for _, u := range users {
			if done[u.ID] {
				continue
			}
			done[u.ID] = true
			sessions, err := tx.SessionsOf(u.ID)
			if err != nil {
				return err
			}
			for _, sess := range sessions {
				if sess.Protocol != protocolSAML || sess.NameID != nameID {
					continue
				}
				if len(indexes) > 0 && !indexes[sess.SessionIndex] {
					continue
				}
				if err := tx.DeleteSession(sess.IDHash); err != nil {
					return err
				}
				if err := tx.AppendEvent(storage.Event{
					Time: s.now(), Type: storage.EventSignOut, Actor: u.ID, ActorName: u.UserName,
					ResourceType: "User", ResourceID: u.ID, ResourceName: u.UserName, After: protocolSAML, Reason: "single logout requested by the IdP",
				}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

package attacktest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/storage"
)

// What a SAML case expects of the gateway.
type samlOutcome int

const (
	mustRefuse samlOutcome = iota
	mustAccept             // a control: proves the harness delivers responses the gateway accepts
	mayAccept              // refused, or accepted as the person the IdP signed in, never user B
)

// samlCase alters a real signed Response from the IdP before it is posted
// to the ACS, in the browser that started the sign-in (flow cookie and
// RelayState as the IdP sent them).
type samlCase struct {
	name    string
	user    string // who signs in at the IdP; default gina
	outcome samlOutcome
	// alter changes the parsed Response in place; raw, when set, changes
	// the serialised XML afterwards.
	alter func(t *testing.T, k *samlKit, resp *etree.Element)
	raw   func(xml []byte) []byte
}

// samlKit holds what the alterations need: a key pair the gateway does not
// trust.
type samlKit struct {
	signer   *dsig.SigningContext
	cert     *x509.Certificate
	certText string // base64 DER, as in KeyInfo
}

func newSAMLKit(t *testing.T) *samlKit {
	t.Helper()
	// Named like the real IdP's certificate, as an attacker would.
	key, cert := testpki.SigningKeyPair(t, gatewaytest.SAMLIdPCommonName)
	der := cert.Raw
	// The signing context crewjam's IdP uses, with the attacker's key.
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	return &samlKit{signer: ctx, cert: cert, certText: base64.StdEncoding.EncodeToString(der)}
}

// child is the first direct child of el with the local name tag.
func child(t *testing.T, el *etree.Element, tag string) *etree.Element {
	t.Helper()
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	t.Fatalf("<%s> has no <%s>", el.Tag, tag)
	return nil
}

// removeSignature removes el's own ds:Signature.
func removeSignature(t *testing.T, el *etree.Element) {
	t.Helper()
	el.RemoveChild(child(t, el, "Signature"))
}

// insertAfter puts c right after ref among ref's siblings.
func insertAfter(ref, c *etree.Element) {
	ref.Parent().InsertChildAt(ref.Index()+1, c)
}

// replace puts c where old is, and takes old out.
func replace(old, c *etree.Element) {
	p := old.Parent()
	i := old.Index()
	p.RemoveChildAt(i)
	p.InsertChildAt(i, c)
}

// asGlobexRoot rewrites every value naming gina to name globex's admin,
// user B of the attacks: NameID, uid, mail, ePPN, cn and groups.
func asGlobexRoot(el *etree.Element) {
	values := map[string]string{
		ginaEmail:     globexRootEmail,
		ginaUser:      globexRootUID,
		"Gina Writer": "Root Admin",
		"writers":     "admins",
	}
	for _, e := range el.FindElements(".//*") {
		if v, ok := values[strings.TrimSpace(e.Text())]; ok && len(e.ChildElements()) == 0 {
			e.SetText(v)
		}
	}
}

// evilAssertion is an unsigned copy of the signed assertion for user B,
// with the id given ("" keeps the original's, which wrapping attacks use
// so the signature's reference still finds something).
func evilAssertion(t *testing.T, signed *etree.Element, id string) *etree.Element {
	t.Helper()
	e := signed.Copy()
	removeSignature(t, e)
	if id != "" {
		e.CreateAttr("ID", id)
	}
	asGlobexRoot(e)
	return e
}

// signWith replaces el with a copy signed by the kit's key, the signature
// where SAML wants it (after the Issuer), and returns the copy. The
// signature is checked against the kit's own certificate, so a refusal is
// about the key, not a broken signature.
func (k *samlKit) signWith(t *testing.T, el *etree.Element) *etree.Element {
	t.Helper()
	signed, err := k.signer.SignEnveloped(reparsed(t, el.Copy()))
	if err != nil {
		t.Fatal(err)
	}
	// goxmldsig appends the signature without making signed its parent,
	// so take it out by position.
	sig, ok := signed.Child[len(signed.Child)-1].(*etree.Element)
	if !ok || sig.Tag != "Signature" {
		t.Fatal("goxmldsig did not append a signature")
	}
	signed.RemoveChildAt(len(signed.Child) - 1)
	insertAfter(child(t, signed, "Issuer"), sig)
	// goxmldsig verifies parsed documents, not the trees it builds: check
	// the signature as the gateway will get it.
	parsed := reparsed(t, signed)
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{k.cert}})
	if _, err := vc.Validate(parsed); err != nil {
		t.Fatalf("the attacker's own signature does not verify: %v", err)
	}
	replace(el, parsed)
	return parsed
}

// reparsed serialises el (detached from any document) and parses it again.
func reparsed(t *testing.T, el *etree.Element) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	text, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	parsed := etree.NewDocument()
	if err := parsed.ReadFromString(text); err != nil {
		t.Fatal(err)
	}
	return parsed.Root()
}

// setKeyInfo puts certText into the signature's KeyInfo certificate.
func setKeyInfo(t *testing.T, signedEl *etree.Element, certText string) {
	t.Helper()
	c := signedEl.FindElement("./Signature/KeyInfo/X509Data/X509Certificate")
	if c == nil {
		t.Fatal("signature without an X509Certificate")
	}
	c.SetText(certText)
}

func newID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return fmt.Sprintf("id-%x", b)
}

var samlCases = []samlCase{
	// Controls.
	{name: "unchanged (parsed and serialised again)", outcome: mustAccept,
		alter: func(t *testing.T, k *samlKit, resp *etree.Element) {}},
	{name: "response signature removed, signed assertion intact", outcome: mustAccept,
		alter: func(t *testing.T, k *samlKit, resp *etree.Element) { removeSignature(t, resp) }},

	// Signatures removed or broken.
	{name: "every signature removed", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		removeSignature(t, child(t, resp, "Assertion"))
	}},
	{name: "every signature removed, user B", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		removeSignature(t, a)
		asGlobexRoot(a)
	}},
	{name: "user B under both signatures", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		asGlobexRoot(child(t, resp, "Assertion"))
	}},
	{name: "user B under the assertion's signature, response unsigned", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		asGlobexRoot(child(t, resp, "Assertion"))
	}},
	{name: "empty SignatureValue", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		a.FindElement("./Signature/SignatureValue").SetText("")
		asGlobexRoot(a)
	}},

	// Signed by another key.
	{name: "genuine content, re-signed by another key", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		removeSignature(t, a)
		k.signWith(t, a)
		k.signWith(t, resp)
	}},
	{name: "user B, signed by another key", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		removeSignature(t, a)
		asGlobexRoot(a)
		k.signWith(t, a)
		k.signWith(t, resp)
	}},
	{name: "user B, assertion signed by another key, response unsigned", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		removeSignature(t, a)
		asGlobexRoot(a)
		k.signWith(t, a)
	}},
	{name: "user B, signed by another key with the IdP's certificate in KeyInfo", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		idpCert := resp.FindElement("./Signature/KeyInfo/X509Data/X509Certificate").Text()
		removeSignature(t, resp)
		a := child(t, resp, "Assertion")
		removeSignature(t, a)
		asGlobexRoot(a)
		setKeyInfo(t, k.signWith(t, a), idpCert)
		setKeyInfo(t, k.signWith(t, resp), idpCert)
	}},
	{name: "signed assertion kept, user B's signed by another key before it", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, newID())
		signed.Parent().InsertChildAt(signed.Index(), evil)
		k.signWith(t, evil)
	}},

	// XML signature wrapping: the signed assertion stays somewhere its
	// signature verifies, user B's unsigned one where an SP might read it.
	{name: "XSW3: B's assertion before the signed one, new ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		signed.Parent().InsertChildAt(signed.Index(), evilAssertion(t, signed, newID()))
	}},
	{name: "XSW3: B's assertion before the signed one, same ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		signed.Parent().InsertChildAt(signed.Index(), evilAssertion(t, signed, ""))
	}},
	{name: "B's assertion after the signed one, new ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		insertAfter(signed, evilAssertion(t, signed, newID()))
	}},
	{name: "B's assertion after the signed one, same ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		insertAfter(signed, evilAssertion(t, signed, ""))
	}},
	{name: "XSW4: signed assertion wrapped inside B's, new ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, newID())
		replace(signed, evil)
		evil.AddChild(signed)
	}},
	{name: "XSW4: signed assertion wrapped inside B's, same ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, "")
		replace(signed, evil)
		evil.AddChild(signed)
	}},
	{name: "XSW: signed assertion in samlp:Extensions, B's in its place, same ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, "")
		replace(signed, evil)
		ext := etree.NewElement("samlp:Extensions")
		ext.AddChild(signed)
		insertAfter(child(t, resp, "Issuer"), ext)
	}},
	{name: "XSW: signed assertion in samlp:Extensions, B's in its place, new ID", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, newID())
		replace(signed, evil)
		ext := etree.NewElement("samlp:Extensions")
		ext.AddChild(signed)
		insertAfter(child(t, resp, "Issuer"), ext)
	}},
	{name: "XSW7: signed assertion in Extensions inside B's assertion", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		evil := evilAssertion(t, signed, newID())
		replace(signed, evil)
		ext := etree.NewElement("saml:Extensions")
		ext.AddChild(signed)
		insertAfter(child(t, evil, "Issuer"), ext)
	}},
	{name: "XSW8: B's assertion carries the signature, signed content in its ds:Object", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		sig := child(t, signed, "Signature").Copy()
		content := signed.Copy()
		removeSignature(t, content)
		obj := sig.CreateElement("ds:Object")
		obj.AddChild(content)
		evil := evilAssertion(t, signed, "")
		insertAfter(child(t, evil, "Issuer"), sig)
		replace(signed, evil)
	}},
	{name: "XSW5: B's assertion carries the signature, signed content appended to the response", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		removeSignature(t, resp)
		signed := child(t, resp, "Assertion")
		sig := child(t, signed, "Signature").Copy()
		content := signed.Copy()
		removeSignature(t, content)
		evil := evilAssertion(t, signed, newID())
		insertAfter(child(t, evil, "Issuer"), sig)
		replace(signed, evil)
		resp.AddChild(content)
	}},
	{name: "XSW1: B's response, the signed response in its signature's ds:Object", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		original := resp.Copy()
		resp.CreateAttr("ID", newID())
		signed := child(t, resp, "Assertion")
		replace(signed, evilAssertion(t, signed, newID()))
		obj := child(t, resp, "Signature").CreateElement("ds:Object")
		obj.AddChild(original)
	}},
	{name: "XSW2: B's response, the signed response inside it before the signature", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		original := resp.Copy()
		resp.CreateAttr("ID", newID())
		signed := child(t, resp, "Assertion")
		replace(signed, evilAssertion(t, signed, newID()))
		sig := child(t, resp, "Signature")
		sig.Parent().InsertChildAt(sig.Index(), original)
	}},
	{name: "B's response around the genuine signed response", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
		original := resp.Copy()
		removeSignature(t, resp)
		resp.CreateAttr("ID", newID())
		signed := child(t, resp, "Assertion")
		replace(signed, evilAssertion(t, signed, newID()))
		resp.AddChild(original)
	}},

	// Parsing tricks.
	{name: "comment splitting the signed email (CVE-2017-11427 style)", user: malloryUID, outcome: mayAccept,
		alter: func(t *testing.T, k *samlKit, resp *etree.Element) {
			// mallory's email is root@globex.example.evil.test: an SP
			// that reads only the text before a comment sees root's.
			full := globexRootEmail + ".evil.test"
			n := 0
			for _, e := range resp.FindElements(".//*") {
				if len(e.ChildElements()) == 0 && e.Text() == full {
					e.SetText(globexRootEmail)
					e.CreateComment("")
					e.CreateCharData(".evil.test")
					n++
				}
			}
			if n == 0 {
				t.Fatal("mallory's email is not in the response")
			}
		}},
	{name: "DOCTYPE with an internal entity", outcome: mayAccept,
		alter: func(t *testing.T, k *samlKit, resp *etree.Element) {},
		raw: func(x []byte) []byte {
			return append([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "`+globexRootEmail+`">]>`), x...)
		}},
	{name: "entity expansion bomb", alter: func(t *testing.T, k *samlKit, resp *etree.Element) {},
		raw: func(x []byte) []byte {
			var b bytes.Buffer
			b.WriteString(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a0 "` + strings.Repeat("x", 64) + `">`)
			for i := 1; i < 12; i++ {
				fmt.Fprintf(&b, `<!ENTITY a%d "%s">`, i, strings.Repeat(fmt.Sprintf("&a%d;", i-1), 10))
			}
			b.WriteString(`]>`)
			return append(b.Bytes(), bytes.Replace(x, []byte(ginaEmail+"</saml:NameID>"), []byte("&a11;</saml:NameID>"), 1)...)
		}},
}

// TestSAMLForgery posts altered versions of real signed responses from
// crewjam's samlidp to the ACS: assertions signed by another key, every
// classic XML signature wrapping, signatures removed or broken, parser
// tricks. Every forgery is refused (4xx, no session cookie), and the
// backend never sees user B (globex's admin, whom the IdP never signed in).
func TestSAMLForgery(t *testing.T) {
	g := startGateway(t)
	k := newSAMLKit(t)
	g.backend.take()
	for i, tc := range samlCases {
		t.Run(tc.name, func(t *testing.T) {
			user, password := ginaUser, ginaPass
			if tc.user == malloryUID {
				user, password = malloryUID, malloryPW
			}
			b := gatewaytest.NewBrowser(t)
			path := fmt.Sprintf("/case/%d", i)
			f, acs := g.samlResponseForm(t, b, path, user, password)
			raw, err := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				t.Fatal(err)
			}
			tc.alter(t, k, doc.Root())
			out, err := doc.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			if tc.raw != nil {
				out = tc.raw(out)
			}
			f.Values.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))

			b.StopRedirects()
			p := b.PostForm(acs, f.Values)
			b.FollowRedirects()
			setsSession := false
			for _, c := range (&http.Response{Header: p.Header}).Cookies() {
				if c.Name == sessionCookie && c.Value != "" {
					setsSession = true
				}
			}
			accepted := p.Status == http.StatusSeeOther && setsSession
			switch {
			case p.Status >= 500:
				t.Fatalf("the ACS answered %d\n%.500s", p.Status, p.Body)
			case tc.outcome == mustAccept && !accepted:
				t.Fatalf("control refused: %d, session cookie %v: %s\n%.500s", p.Status, setsSession, g.lastRefusal(t), p.Body)
			case tc.outcome == mustRefuse && accepted:
				t.Errorf("FORGERY ACCEPTED: %d, session cookie set", p.Status)
			case !accepted && (p.Status < 400 || setsSession || b.Cookie(g.globex, sessionCookie) != ""):
				t.Errorf("refused without a 4xx or with a session: %d, Set-Cookie %q", p.Status, p.Header.Values("Set-Cookie"))
			}
			if !accepted {
				t.Logf("refused %d: %s", p.Status, g.lastRefusal(t))
			}

			// What the browser gets now.
			who := userSeen(t, g, b, g.globex+path)
			emails := g.backendEmails()
			if accepted {
				t.Logf("accepted as %q", who)
				if who == "" {
					t.Errorf("accepted, but the session does not reach the backend")
				}
			} else if who != "" {
				t.Errorf("refused, yet the browser reaches the backend as %q", who)
			}
			if who == globexRootUID || who == globexRootEmail || emails[globexRootEmail] {
				t.Errorf("FORGERY: the backend sees user B (%q, emails %v)", who, emails)
			}
		})
	}

	// The audit log agrees: no sign-in and no user for user B.
	events, _ := g.events(t, "globex", storage.EventSignIn, storage.EventJITUserCreated)
	for _, e := range events {
		for _, word := range strings.Fields(e.After) {
			if word == globexRootUID || word == globexRootEmail {
				t.Errorf("audit: %s %s %q", e.Type, e.ResourceID, e.After)
			}
		}
	}
}

// lastRefusal is the reason of globex's newest signin.refused event.
func (g *gateway) lastRefusal(t *testing.T) string {
	t.Helper()
	events, _ := g.events(t, "globex", storage.EventSignInRefused)
	if len(events) == 0 {
		return "(no signin.refused event)"
	}
	return events[0].Reason
}

// backendEmails are the X-Remote-Email values of the requests the backend
// got since the last take.
func (g *gateway) backendEmails() map[string]bool {
	out := map[string]bool{}
	for _, r := range g.backend.take() {
		for _, v := range r.Header.Values("X-Remote-Email") {
			out[v] = true
		}
	}
	return out
}

package sso

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/pages"
	"github.com/portcullis/portcullis/storage"
)

// newRandom returns a fresh 256-bit random value, hex encoded.
func newRandom() string {
	v, _ := storage.NewSecret()
	return v
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// flowFailed answers a callback whose flow did not check out: expired,
// already used (a reloaded or replayed callback), or from another browser.
func (ep *endpoints) flowFailed(w http.ResponseWriter, r *http.Request, protocol string, err error) {
	switch {
	case errors.Is(err, errFlowMalformed), errors.Is(err, errFlowNoCookie),
		errors.Is(err, errFlowMismatch), errors.Is(err, errFlowUnknown):
		ep.refuse(w, r, protocol, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: err.Error(),
			title:   "Sign-in expired",
			message: "This sign-in link was already used, has expired, or was started in another browser."}, nil)
	default:
		ep.s.observeSignIn(protocol, SignInError)
		ep.s.serverError(w, r, "consume login flow", err)
	}
}

// refuse counts (and at most once a window records) a refused sign-in and
// shows the page that explains it, naming who the IdP said the person is
// (who, nil when unknown); past the address's limit, a 429 with
// Retry-After.
func (ep *endpoints) refuse(w http.ResponseWriter, r *http.Request, protocol string, ref *refusal, who *pages.User) {
	v, eventID := ep.s.auditRefusal(r, protocol, ref)
	ep.s.observeRefusal(protocol, ref, v.limited)
	if v.limited {
		ep.s.writePage(w, r, pages.Data{Kind: pages.TooManyAttempts, Status: http.StatusTooManyRequests, Code: "too_many_attempts",
			RetryAfter: int((v.retryAfter + time.Second - 1) / time.Second), AppURL: "/"})
		return
	}
	status := ref.status
	if status == 0 {
		status = http.StatusForbidden
	}
	d := pages.Data{Kind: ref.page, Status: status, Title: ref.title, Message: ref.message, User: who, Reference: eventID, AppURL: "/"}
	switch ref.page {
	case pages.SignInFailed, pages.IdPError:
		d.SignInURL, d.SignInLabel = ep.s.LoginURL(ep.prefix, "/"), "Sign in again"
	default:
		// The IdP signed in someone this application refuses: offer
		// another account (after ending the IdP session where the IdP
		// lets us).
		d.SwitchUserURL = ep.prefix + PathLogout
	}
	ep.s.writePage(w, r, d)
}

// whoFrom is how a refusal page names the person the IdP vouched for.
func whoFrom(id *identity) *pages.User {
	if id == nil {
		return nil
	}
	u := &pages.User{Email: id.email, DisplayName: id.name}
	if len(id.userNames) > 0 {
		u.Name = id.userNames[0]
	}
	if u.Label() == "" {
		return nil
	}
	return u
}

// finishSignIn stores the session for a verified identity and sends the
// browser back to where it started.
func (ep *endpoints) finishSignIn(w http.ResponseWriter, r *http.Request, id *identity, returnPath string) {
	sessionID, user, err := ep.s.completeSignIn(r, id)
	var ref *refusal
	if errors.As(err, &ref) {
		ep.refuse(w, r, id.protocol, ref, whoFrom(id))
		return
	}
	if err != nil {
		ep.s.observeSignIn(id.protocol, SignInError)
		ep.s.serverError(w, r, "complete sign-in", err)
		return
	}
	ep.s.observeSignIn(id.protocol, SignInSucceeded)
	ep.s.log.Info("signed in", zap.String("protocol", id.protocol), zap.String("user", user.ID))
	ep.s.setSessionCookie(w, r, sessionID)
	// The return path was sanitised when the flow began; sanitise again so
	// that nothing stored can ever redirect elsewhere.
	http.Redirect(w, r, SanitizeReturnPath(returnPath), http.StatusSeeOther)
}

func (s *Service) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error("sso: "+what, zap.Error(err))
	if errors.Is(err, storage.ErrUnavailable) {
		// The shared database is down: nothing was written half, and
		// the same request will work once it is back.
		s.writePage(w, r, pages.Data{Kind: pages.ServerError, Status: http.StatusServiceUnavailable, Code: "unavailable",
			RetryAfter: retryAfterUnavailable, Message: "The sign-in service is briefly unavailable. Try again in a moment.", AppURL: "/"})
		return
	}
	s.writePage(w, r, pages.Data{Kind: pages.ServerError, Status: http.StatusInternalServerError, Code: "internal_error",
		Message: "The sign-in service could not finish your request.", AppURL: "/"})
}

// retryAfterUnavailable is the Retry-After, in seconds, of the 503 sent
// while the store is unavailable.
const retryAfterUnavailable = 5

// notFound answers a path under the prefix that is no endpoint.
func (ep *endpoints) notFound(w http.ResponseWriter, r *http.Request) {
	ep.s.writePage(w, r, pages.Data{Kind: pages.NotFound, Status: http.StatusNotFound, AppURL: "/",
		SignInURL: ep.s.LoginURL(ep.prefix, "/")})
}

// signedOutPage is where sign-out lands: here directly, or back from the
// IdP's logout (PathSignedOut is the post-logout redirect to register).
// It offers a new sign-in rather than going back to the IdP's form.
func (ep *endpoints) signedOutPage(w http.ResponseWriter, r *http.Request, who *pages.User) {
	ep.s.writePage(w, r, pages.Data{Kind: pages.SignedOut, Status: http.StatusOK, User: who, Reference: "",
		SignInURL: ep.s.LoginURL(ep.prefix, "/"), SignInLabel: "Sign in again"})
}

// signedOut serves GET <prefix>/signed-out.
func (ep *endpoints) signedOut(w http.ResponseWriter, r *http.Request) { ep.signedOutPage(w, r, nil) }

// logout ends the local session and then, where the IdP offers it, sends
// the browser to SAML Single Logout or OIDC RP-initiated logout.
//
// A POST must be same-origin (Sec-Fetch-Site / Origin checks). A GET from
// another site only shows a confirmation form, so that a foreign page cannot
// sign people out with a link or an image.
func (ep *endpoints) logout(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	confirm := pages.Data{Kind: pages.ConfirmSignOut, SignOutForm: ep.prefix + PathLogout, AppURL: "/"}
	if r.Method == http.MethodPost {
		if err := http.NewCrossOriginProtection().Check(r); err != nil {
			confirm.Status = http.StatusForbidden
			s.writePage(w, r, confirm)
			return
		}
	} else if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		confirm.Status = http.StatusOK
		s.writePage(w, r, confirm)
		return
	}
	s.clearSessionCookie(w, r)
	hash, ok := s.currentSessionHash(r)
	if !ok {
		ep.signedOutPage(w, r, nil)
		return
	}
	var ended *storage.Session
	var who *pages.User
	ctx, cancel := auditContext(r)
	defer cancel()
	err := s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		ended, who = nil, nil
		sess, err := tx.GetSession(hash)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteSession(hash); err != nil {
			return err
		}
		ended = sess
		ev := storage.Event{
			Time: s.now(), Type: storage.EventSignOut, Actor: sess.UserID,
			ResourceType: "User", ResourceID: sess.UserID, After: sess.Protocol,
		}
		if u, err := tx.GetUser(sess.UserID); err == nil {
			who = &pages.User{Name: u.UserName, Email: u.PrimaryEmail(), DisplayName: u.DisplayName}
			ev.ActorName, ev.ResourceName = u.UserName, u.UserName
		}
		return tx.AppendEvent(ev)
	})
	if err != nil {
		s.serverError(w, r, "sign out", err)
		return
	}
	if ended != nil {
		s.log.Info("signed out", zap.String("user", ended.UserID))
		switch {
		case ended.Protocol == protocolOIDC && s.oidc != nil:
			if target := s.oidc.logoutURL(ended.IDTokenHint); target != "" {
				http.Redirect(w, r, target, http.StatusSeeOther)
				return
			}
		case ended.Protocol == protocolSAML && s.saml != nil && ended.NameID != "":
			target, err := ep.samlLogoutRedirect(w, r, ended)
			if err != nil {
				// The local session is gone already; the IdP session is
				// not, which the page cannot fix. Log and carry on.
				s.log.Warn("saml single logout not started", zap.Error(err))
			} else if target != "" {
				http.Redirect(w, r, target, http.StatusSeeOther)
				return
			}
		}
	}
	ep.signedOutPage(w, r, who)
}

// idpUnavailable answers a sign-in request while the IdP was never
// reached: 503, with a Retry-After of the time to the next attempt.
func (ep *endpoints) idpUnavailable(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	now := time.Now()
	retry := time.Second
	switch {
	case s.oidc != nil:
		retry = s.oidc.idp.retryAfter(now)
	case s.saml != nil:
		retry = s.saml.idp.retryAfter(now)
	}
	secs := int((retry + time.Second - 1) / time.Second)
	s.IdPUnreachablePage(w, r, ep.prefix, returnPathOf(r), max(secs, 1))
}

// returnPathOf is the page a sign-in request wants to come back to (its rd
// parameter), for a "try again" link; LoginURL sanitises it.
func returnPathOf(r *http.Request) string {
	if rd := r.URL.Query().Get("rd"); rd != "" {
		return rd
	}
	return "/"
}

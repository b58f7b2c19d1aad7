package sso

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// newRandom returns a fresh 256-bit random value, hex encoded.
func newRandom() string {
	v, _ := storage.NewSecret()
	return v
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// flowFailed answers a callback whose flow did not check out.
func (ep *endpoints) flowFailed(w http.ResponseWriter, r *http.Request, protocol string, err error) {
	switch {
	case errors.Is(err, errFlowMalformed), errors.Is(err, errFlowNoCookie),
		errors.Is(err, errFlowMismatch), errors.Is(err, errFlowUnknown):
		ep.refuse(w, r, protocol, &refusal{status: http.StatusBadRequest, page: pageFailed, reason: err.Error()})
	default:
		ep.s.serverError(w, "consume login flow", err)
	}
}

// refuse counts (and at most once a window records) a refused sign-in and
// shows the page that explains it; past the address's limit, a 429 with
// Retry-After.
func (ep *endpoints) refuse(w http.ResponseWriter, r *http.Request, protocol string, ref *refusal) {
	v := ep.s.auditRefusal(r, protocol, ref)
	if v.limited {
		w.Header().Set("Retry-After", strconv.Itoa(int((v.retryAfter+time.Second-1)/time.Second)))
		writePage(w, http.StatusTooManyRequests, pageTooMany, pageData{})
		return
	}
	status := ref.status
	if status == 0 {
		status = http.StatusForbidden
	}
	writePage(w, status, ref.page, pageData{})
}

// finishSignIn stores the session for a verified identity and sends the
// browser back to where it started.
func (ep *endpoints) finishSignIn(w http.ResponseWriter, r *http.Request, id *identity, returnPath string) {
	sessionID, user, err := ep.s.completeSignIn(r, id)
	var ref *refusal
	if errors.As(err, &ref) {
		ep.refuse(w, r, id.protocol, ref)
		return
	}
	if err != nil {
		ep.s.serverError(w, "complete sign-in", err)
		return
	}
	ep.s.log.Info("signed in", zap.String("protocol", id.protocol), zap.String("user", user.ID))
	ep.s.setSessionCookie(w, r, sessionID)
	// The return path was sanitised when the flow began; sanitise again so
	// that nothing stored can ever redirect elsewhere.
	http.Redirect(w, r, SanitizeReturnPath(returnPath), http.StatusSeeOther)
}

func (s *Service) serverError(w http.ResponseWriter, what string, err error) {
	s.log.Error("sso: "+what, zap.Error(err))
	writePage(w, http.StatusInternalServerError, pageServerError, pageData{})
}

// logout ends the local session and then, where the IdP offers it, sends
// the browser to SAML Single Logout or OIDC RP-initiated logout.
//
// A POST must be same-origin (Sec-Fetch-Site / Origin checks). A GET from
// another site only shows a confirmation form, so that a foreign page cannot
// sign people out with a link or an image.
func (ep *endpoints) logout(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	if r.Method == http.MethodPost {
		if err := http.NewCrossOriginProtection().Check(r); err != nil {
			writePage(w, http.StatusForbidden, pageConfirmSignOut, pageData{FormAction: ep.prefix + PathLogout})
			return
		}
	} else if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		writePage(w, http.StatusOK, pageConfirmSignOut, pageData{FormAction: ep.prefix + PathLogout})
		return
	}
	s.clearSessionCookie(w, r)
	hash, ok := s.currentSessionHash(r)
	if !ok {
		writePage(w, http.StatusOK, pageSignedOut, pageData{LinkURL: s.LoginURL(ep.prefix, "/"), LinkText: "Sign in again"})
		return
	}
	var ended *storage.Session
	ctx, cancel := auditContext(r)
	defer cancel()
	err := s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		ended = nil
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
			ev.ActorName, ev.ResourceName = u.UserName, u.UserName
		}
		return tx.AppendEvent(ev)
	})
	if err != nil {
		s.serverError(w, "sign out", err)
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
	writePage(w, http.StatusOK, pageSignedOut, pageData{LinkURL: s.LoginURL(ep.prefix, "/"), LinkText: "Sign in again"})
}

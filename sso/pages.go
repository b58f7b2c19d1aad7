package sso

import (
	"context"
	"net/http"
	"strconv"

	"github.com/portcullis/portcullis/pages"
)

// refusalSlot carries, through the endpoint mux, the error OnRefusal
// answered a page with, to the caller of ServeFunc.
type refusalSlot struct{ err error }

type refusalSlotKey struct{}

// handsOver says whether a page of this kind may go to OnRefusal: every
// failure (4xx, 5xx) but the sign-out confirmation, which is a form the
// person needs, not an error to style.
func handsOver(d *pages.Data) bool {
	return d.Status >= 400 && d.Kind != pages.ConfirmSignOut
}

// writePage answers with a page: through TenantConfig.OnRefusal when the
// request came through ServeFunc and the hook takes it, else the tenant's
// pages. Nothing the client sent is echoed, except through html/template's
// escaping.
func (s *Service) writePage(w http.ResponseWriter, r *http.Request, d pages.Data) {
	d = d.Complete()
	if slot, ok := r.Context().Value(refusalSlotKey{}).(*refusalSlot); ok && s.cfg.OnRefusal != nil && handsOver(&d) {
		if err := s.cfg.OnRefusal(r, &d); err != nil {
			if d.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			}
			slot.err = err
			return
		}
	}
	s.cfg.Pages.Write(w, d)
}

// withRefusalSlot returns r carrying a fresh slot.
func withRefusalSlot(r *http.Request) (*http.Request, *refusalSlot) {
	slot := &refusalSlot{}
	return r.WithContext(context.WithValue(r.Context(), refusalSlotKey{}, slot)), slot
}

// IdPUnreachablePage answers a sign-in that cannot start because the
// identity provider cannot be reached: 503 with Retry-After (seconds,
// default 30), the tenant's idp_unreachable page, or OnRefusal's answer
// when the request came through ServeFunc. prefix is where the Service is
// mounted; the page links to a new sign-in attempt coming back to
// returnPath.
func (s *Service) IdPUnreachablePage(w http.ResponseWriter, r *http.Request, prefix, returnPath string, retryAfter int) {
	if retryAfter <= 0 {
		retryAfter = 30
	}
	s.writePage(w, r, pages.Data{Kind: pages.IdPUnreachable, Status: http.StatusServiceUnavailable, Code: "idp_unreachable",
		RetryAfter: retryAfter, SignInURL: s.LoginURL(prefix, returnPath), SignInLabel: "Try again", AppURL: "/"})
}

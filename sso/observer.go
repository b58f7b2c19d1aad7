package sso

import "github.com/portcullis/portcullis/pages"

// Results of a sign-in, as TenantConfig.ObserveSignIn receives them. They
// name what happened, never who: they are metric label values.
const (
	// SignInSucceeded: a session was stored and its cookie set.
	SignInSucceeded = "success"
	// SignInNotProvisioned: no provisioned user matches (and no JIT), or
	// the match is linked to another account at the IdP.
	SignInNotProvisioned = "not_provisioned"
	// SignInInactive: the matched user is deactivated.
	SignInInactive = "inactive"
	// SignInDomainNotAllowed: the email domain is not in allowed_domains.
	SignInDomainNotAllowed = "domain_not_allowed"
	// SignInInvalid: the IdP's answer could not be verified, or the
	// sign-in was expired, replayed or finished in another browser.
	SignInInvalid = "invalid"
	// SignInIdPError: the IdP answered with an error instead of a sign-in.
	SignInIdPError = "idp_error"
	// SignInRateLimited: refused with 429; the client's address is over
	// its limit of refused sign-ins.
	SignInRateLimited = "rate_limited"
	// SignInError: the gateway could not finish (the store failed, or the
	// IdP's token endpoint could not be reached).
	SignInError = "error"
)

// signInResults maps a refusal's page to its result.
var signInResults = map[pages.Kind]string{
	pages.SignInFailed:     SignInInvalid,
	pages.AccountInactive:  SignInInactive,
	pages.DomainNotAllowed: SignInDomainNotAllowed,
	pages.NotProvisioned:   SignInNotProvisioned,
	pages.IdPError:         SignInIdPError,
}

// observeSignIn reports a finished sign-in attempt to the configured hook.
func (s *Service) observeSignIn(protocol, result string) {
	if s.cfg.ObserveSignIn != nil {
		s.cfg.ObserveSignIn(protocol, result)
	}
}

// observeRefusal reports a refused sign-in.
func (s *Service) observeRefusal(protocol string, ref *refusal, limited bool) {
	if s.cfg.ObserveSignIn == nil {
		return
	}
	result, ok := signInResults[ref.page]
	switch {
	case limited:
		result = SignInRateLimited
	case !ok:
		result = SignInInvalid
	}
	s.cfg.ObserveSignIn(protocol, result)
}

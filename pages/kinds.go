package pages

// Kind names one page the gateway shows. It is also the file name (Kind +
// ".html") of an operator's template that replaces the page, and the value
// of the {portcullis.error.kind} placeholder.
type Kind string

// The pages. The comment says when each is shown.
const (
	// SignedOut: after sign-out (200).
	SignedOut Kind = "signed_out"
	// ConfirmSignOut: a sign-out asked for from another site (a link, a
	// cross-origin form) is confirmed with a button first.
	ConfirmSignOut Kind = "confirm_sign_out"
	// SignInRequired: a browser without a session on a route that cannot
	// send it to sign in (401). Routes with a sign-in redirect instead.
	SignInRequired Kind = "sign_in_required"
	// AccessDenied: signed in, but the route's policy (require,
	// allow_groups) refuses the user (403).
	AccessDenied Kind = "access_denied"
	// AccountInactive: the user is deactivated in the directory (403).
	AccountInactive Kind = "account_inactive"
	// NoMappedGroup: the tenant requires a mapped group and the user is in
	// none (403).
	NoMappedGroup Kind = "no_mapped_group"
	// NotProvisioned: the IdP signed the person in, but no account is set
	// up for them here (403).
	NotProvisioned Kind = "not_provisioned"
	// DomainNotAllowed: the email domain is not one of allowed_domains
	// (403).
	DomainNotAllowed Kind = "domain_not_allowed"
	// SignInFailed: the IdP's answer could not be verified, was already
	// used (a replayed or reloaded callback) or has expired (400).
	SignInFailed Kind = "sign_in_failed"
	// IdPError: the IdP answered the sign-in with an error (400).
	IdPError Kind = "idp_error"
	// IdPUnreachable: the identity provider cannot be reached, so sign-in
	// cannot start (503, with Retry-After).
	IdPUnreachable Kind = "idp_unreachable"
	// TooManyAttempts: too many refused sign-ins from the address (429).
	TooManyAttempts Kind = "too_many_attempts"
	// NotFound: an unknown path under the sign-in prefix (404).
	NotFound Kind = "not_found"
	// BadRequest: a request the gateway will not pass on, whoever sends
	// it: a path the application could read as another page, a tunnel
	// (400).
	BadRequest Kind = "bad_request"
	// ServerError: the gateway could not finish the request (500, or 503
	// when the store is busy).
	ServerError Kind = "server_error"
)

// Kinds lists every page, in the order the documentation gives them.
var Kinds = []Kind{
	SignedOut, ConfirmSignOut, SignInRequired, AccessDenied, AccountInactive, NoMappedGroup,
	NotProvisioned, DomainNotAllowed, SignInFailed, IdPError, IdPUnreachable, TooManyAttempts,
	NotFound, BadRequest, ServerError,
}

// text is a page's words when its caller gives none.
type text struct {
	title, message, hint string
}

var texts = map[Kind]text{
	SignedOut: {"You are signed out",
		"You have been signed out of this application.",
		"To use it again, sign in."},
	ConfirmSignOut: {"Sign out?",
		"Do you want to sign out of this application?", ""},
	SignInRequired: {"Sign in first",
		"This page is only for people who are signed in.", ""},
	AccessDenied: {"Access denied",
		"You are signed in, but you do not have access to this page.",
		"If you need it, ask your administrator for access, or sign in with another account."},
	AccountInactive: {"Your account is deactivated",
		"Your account has been deactivated in your organisation's directory, so you cannot use this application.",
		"If you think this is a mistake, contact your administrator."},
	NoMappedGroup: {"You have no access",
		"You are in none of the groups that grant access to this application.",
		"Ask your administrator to add you to one."},
	NotProvisioned: {"You do not have access",
		"You signed in at your identity provider, but no account for you is set up in this application.",
		"Ask your administrator to give you access, or sign in with another account."},
	DomainNotAllowed: {"Your account is not allowed here",
		"Only accounts from the organisation's allowed email domains can sign in to this application.",
		"Sign in with your work account, or contact your administrator."},
	SignInFailed: {"Sign-in failed",
		"The answer from your identity provider could not be verified, or this sign-in link was already used or has expired.",
		"Nothing is wrong with your account. Start the sign-in again."},
	IdPError: {"Sign-in was not completed",
		"Your identity provider did not complete the sign-in.",
		"Start the sign-in again. If it keeps failing, contact your administrator."},
	IdPUnreachable: {"Sign-in is unavailable",
		"The identity provider that signs you in to this application cannot be reached right now.",
		"This is usually brief. Try again in a minute; if it lasts, contact your administrator."},
	TooManyAttempts: {"Too many sign-in attempts",
		"Too many sign-in attempts from your network failed.",
		"Wait a minute, then start the sign-in again."},
	NotFound: {"Page not found",
		"There is no sign-in page at this address.",
		"Go back to the application and sign in from there."},
	BadRequest: {"Bad request",
		"The gateway did not pass this request on to the application.",
		""},
	ServerError: {"Something went wrong",
		"The gateway could not finish your request.",
		"Try again in a moment."},
}

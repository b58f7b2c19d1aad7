package operator

import (
	"context"
	"errors"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TokenStatus is the SCIM token's health: when it was made and rotated (or
// disabled), its last use (in memory, else the persisted record, which is
// written at most once a minute), and the requests and refused tokens of
// the last 24 hours counted since the process started. Never the token.
func (s *Service) TokenStatus(ctx context.Context) (*TokenStatus, error) {
	var (
		tok     *storage.SCIMToken
		retired []scimhandler.RetiredTokenInfo
		last    *scimhandler.TokenUse
	)
	err := s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		var err error
		tok, err = tx.GetSCIMToken()
		if errors.Is(err, storage.ErrNotFound) {
			tok, err = nil, nil
		}
		if err != nil {
			return err
		}
		if retired, err = scimhandler.RetiredTokens(tx); err != nil {
			return err
		}
		last, err = scimhandler.LastTokenUse(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if tok == nil && len(retired) == 0 {
		return nil, ErrNoToken
	}
	st := &TokenStatus{Status: TokenActive}
	if tok != nil {
		st.Created = tok.Created
		if len(retired) > 0 && retired[0].Why == "rotated" {
			at := retired[0].Retired
			st.Rotated = &at
		}
	} else {
		st.Status = TokenDisabled
		at := retired[0].Retired
		st.Disabled = &at
	}
	if s.usage != nil {
		u := s.usage.Usage(s.now())
		st.Requests24h, st.Failures24h = u.Requests24h, u.Failures24h
		if u.LastUsed != nil && (last == nil || u.LastUsed.Time.After(last.Time)) {
			last = u.LastUsed
		}
	}
	if last != nil {
		st.LastUsed = &Use{Time: last.Time, ClientAddr: last.ClientAddr, UserAgent: last.UserAgent,
			Client: scimhandler.KnownClient(last.UserAgent)}
	}
	return st, nil
}

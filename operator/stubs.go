package operator

import "context"

func (s *Service) ListUsers(ctx context.Context, q UserQuery) ([]User, string, error) {
	return nil, "", errNotYet
}
func (s *Service) User(ctx context.Context, id string) (*UserDetail, error) { return nil, errNotYet }
func (s *Service) CreateManualUser(ctx context.Context, actor string, nu NewUser) (*UserDetail, error) {
	return nil, errNotYet
}
func (s *Service) UpdateUser(ctx context.Context, actor, id string, c UserChange) (*UserDetail, error) {
	return nil, errNotYet
}
func (s *Service) DeleteUser(ctx context.Context, actor, id string) error { return errNotYet }
func (s *Service) ListGroups(ctx context.Context) ([]Group, error)        { return nil, errNotYet }
func (s *Service) DeclareGroup(ctx context.Context, actor, claimValue string) (*Group, error) {
	return nil, errNotYet
}
func (s *Service) Mappings(ctx context.Context) (*Mappings, error)                 { return nil, errNotYet }
func (s *Service) SetMapping(ctx context.Context, actor, group, role string) error { return errNotYet }
func (s *Service) DeleteMapping(ctx context.Context, actor, group string) error    { return errNotYet }
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return nil, errNotYet
}
func (s *Service) EndSession(ctx context.Context, actor, userID, sessionID string) error {
	return errNotYet
}
func (s *Service) EndUserSessions(ctx context.Context, actor, userID string) (int, error) {
	return 0, errNotYet
}
func (s *Service) EndTenantSessions(ctx context.Context, actor string) (int, error) {
	return 0, errNotYet
}
func (s *Service) TokenStatus(ctx context.Context) (*TokenStatus, error) { return nil, errNotYet }
func (s *Service) Disconnect(ctx context.Context, actor string) (int, error) {
	return 0, errNotYet
}

package signin

import (
	"context"
	"sync"
	"time"

	"gatehouse/devices"
)

// lastUse remembers when each device token was last accepted, since the
// gateway started: kept in memory, because writing the token file on
// every request of a phone app would cost more than the answer is worth.
// A reload's new SignIn takes over the old one's.
type lastUse struct{ m sync.Map } // token ID → time.Time

func (l *lastUse) touch(id string, at time.Time) { l.m.Store(id, at) }

func (l *lastUse) get(id string) (time.Time, bool) {
	v, ok := l.m.Load(id)
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

// DeviceToken is a device token as the admin dashboard lists it.
type DeviceToken struct {
	devices.Token
	// LastUsed is the last accepted use since the gateway started; zero
	// if none.
	LastUsed time.Time
}

// DeviceTokensList lists every device token with its last use.
func (s *SignIn) DeviceTokensList() ([]DeviceToken, error) {
	list, err := s.devices.List(func(devices.Token) bool { return true })
	if err != nil {
		return nil, err
	}
	out := make([]DeviceToken, len(list))
	for i, t := range list {
		out[i].Token = t
		out[i].LastUsed, _ = s.used.get(t.ID)
	}
	return out, nil
}

// RevokeDevice revokes the device token id on an admin's behalf (by names
// the admin for the log). The owner's last token gone, their offline
// token is released at the provider, as when they revoke it themselves.
func (s *SignIn) RevokeDevice(ctx context.Context, id, by string) (devices.Token, error) {
	gone, err := s.devices.Revoke(func(t devices.Token) bool { return t.ID == id })
	if err != nil {
		return devices.Token{}, err
	}
	if len(gone) == 0 {
		return devices.Token{}, devices.ErrNotFound
	}
	t := gone[0]
	s.outcome("device_token_revoked")
	s.log.Info("device token revoked by an admin", "admin", by, "sub", t.Subject, "device", t.Name, "id", t.ID)
	if left, err := s.devices.List(func(o devices.Token) bool { return o.Subject == t.Subject }); err == nil && len(left) == 0 {
		s.releaseGrant(ctx, t.Subject)
	}
	return t, nil
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/orderstore/orders/eventstore/esdbnode/eventlog"
)

// Action is what a call does to a stream.
type Action int

// Stream actions, as in $acl: $r, $w, $d, $mr, $mw.
const (
	Read Action = iota
	Write
	Delete
	MetaRead
	MetaWrite
)

var aclKeys = [...]string{Read: "$r", Write: "$w", Delete: "$d", MetaRead: "$mr", MetaWrite: "$mw"}

// acl is the roles per action; nil: not set.
type acl [5][]string

// parseACL reads a $acl object. ok is false if it is not one (KurrentDB
// then reads the whole metadata as empty).
func parseACL(raw json.RawMessage) (a acl, ok bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return acl{}, false
	}
	for i, k := range aclKeys {
		v, present := obj[k]
		if !present || string(v) == "null" {
			continue
		}
		var one string
		if json.Unmarshal(v, &one) == nil {
			a[i] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(v, &many); err != nil {
			return acl{}, false
		}
		a[i] = append([]string{}, many...)
	}
	return a, true
}

// metadataACL is the $acl of a stream's metadata JSON (none if absent or
// unreadable).
func metadataACL(raw []byte) acl {
	if len(raw) == 0 {
		return acl{}
	}
	var md map[string]json.RawMessage
	if err := json.Unmarshal(raw, &md); err != nil {
		return acl{}
	}
	v, ok := md["$acl"]
	if !ok {
		return acl{}
	}
	a, ok := parseACL(v)
	if !ok {
		return acl{}
	}
	return a
}

// Built-in defaults when $settings says nothing.
var (
	defaultUserACL   = acl{{RoleAll}, {RoleAll}, {RoleAll}, {RoleAll}, {RoleAll}}
	defaultSystemACL = acl{{GroupAdmins}, {GroupAdmins}, {GroupAdmins}, {GroupAdmins}, {GroupAdmins}}
)

// settingsACL reads $settings' last event: its $userStreamAcl or
// $systemStreamAcl, if set.
func (u *Users) settingsACL(ctx context.Context, system bool) (acl, bool, error) {
	recs, err := u.log.ReadStream(ctx, "$settings", eventlog.Backwards, ^uint64(0), 1)
	if errors.Is(err, eventlog.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return acl{}, false, nil
	}
	var sd *eventlog.StreamDeletedError
	if errors.As(err, &sd) {
		return acl{}, false, nil
	}
	if err != nil {
		return acl{}, false, err
	}
	var s map[string]json.RawMessage
	if json.Unmarshal(recs[0].Data, &s) != nil {
		return acl{}, false, nil
	}
	key := "$userStreamAcl"
	if system {
		key = "$systemStreamAcl"
	}
	v, ok := s[key]
	if !ok {
		return acl{}, false, nil
	}
	a, ok := parseACL(v)
	return a, ok, nil
}

// CheckStream reports whether p may do action on stream: nil, or an error
// wrapping ErrAccessDenied. stream "" is $all.
func (u *Users) CheckStream(ctx context.Context, p Principal, action Action, stream string) error {
	if p.Anonymous() {
		return ErrAccessDenied
	}
	if stream == "" {
		stream = "$all"
	}
	if stream == "$all" && (action == Write || action == Delete) {
		return ErrAccessDenied
	}
	target := stream
	if strings.HasPrefix(stream, "$$") {
		target = stream[2:]
		switch action {
		case Read:
			action = MetaRead
		case Write:
			action = MetaWrite
		default:
			return ErrAccessDenied
		}
	}
	if p.IsAdmin() {
		return nil
	}
	roles, err := u.roles(ctx, action, target)
	if err != nil {
		return err
	}
	if slices.Contains(roles, RoleAll) || slices.ContainsFunc(roles, p.hasRole) {
		return nil
	}
	return ErrAccessDenied
}

// roles resolves the roles of action on stream: its $acl, else $settings,
// else the built-in default.
func (u *Users) roles(ctx context.Context, action Action, stream string) ([]string, error) {
	if stream != "$all" { // $all has no stream state in the log
		st, err := u.log.Stream(ctx, stream)
		var sd *eventlog.StreamDeletedError
		if err != nil && !errors.Is(err, eventlog.ErrStreamNotFound) && !errors.As(err, &sd) {
			return nil, err
		}
		if r := metadataACL(st.Metadata.Raw)[action]; r != nil {
			return r, nil
		}
	}
	system := strings.HasPrefix(stream, "$")
	s, ok, err := u.settingsACL(ctx, system)
	if err != nil {
		return nil, err
	}
	if ok && s[action] != nil {
		return s[action], nil
	}
	if system {
		return defaultSystemACL[action], nil
	}
	return defaultUserACL[action], nil
}

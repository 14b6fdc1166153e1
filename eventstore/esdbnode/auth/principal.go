package auth

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
)

// Well-known groups (roles).
const (
	GroupAdmins = "$admins"
	GroupOps    = "$ops"
	// RoleAll is the pseudo-role meaning everyone authenticated.
	RoleAll = "$all"
)

// Principal is who a call runs as. The zero value is anonymous.
type Principal struct {
	Name   string   // login name; "" for anonymous
	Groups []string // roles, e.g. $admins
}

// Anonymous reports whether nobody logged in.
func (p Principal) Anonymous() bool { return p.Name == "" }

// IsAdmin: the admin user or a member of $admins.
func (p Principal) IsAdmin() bool {
	return p.Name == "admin" || slices.Contains(p.Groups, GroupAdmins)
}

// IsOpsOrAdmin: admin, ops, or a member of $admins or $ops.
func (p Principal) IsOpsOrAdmin() bool {
	return p.IsAdmin() || p.Name == "ops" || slices.Contains(p.Groups, GroupOps)
}

// hasRole: a role equals the principal's name or one of its groups.
func (p Principal) hasRole(role string) bool {
	return !p.Anonymous() && (role == p.Name || slices.Contains(p.Groups, role))
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext is the principal of ctx (anonymous if none).
func FromContext(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// ParseBasic reads "Basic base64(user:password)" as KurrentDB's Basic
// provider does: the scheme must be exactly "Basic" and the decoded text
// must hold a colon (split at the first). ok is false for anything else,
// which the caller treats as no credentials.
func ParseBasic(header string) (user, password string, ok bool) {
	scheme, value, found := strings.Cut(header, " ")
	if !found || scheme != "Basic" {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return "", "", false
	}
	user, password, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	return user, password, true
}

package auth

import "errors"

var (
	// ErrUnauthenticated: unknown, deleted or disabled user, or wrong password.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrAccessDenied: the principal may not do this.
	ErrAccessDenied = errors.New("auth: access denied")
	// ErrUserNotFound: no such user (or deleted).
	ErrUserNotFound = errors.New("auth: user not found")
	// ErrUserExists: a user of that name exists.
	ErrUserExists = errors.New("auth: user already exists")
	// ErrInvalidUser: an empty or malformed login name, or an empty password.
	ErrInvalidUser = errors.New("auth: invalid user")
)

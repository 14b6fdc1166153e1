// Package auth is the secure embedded node's users, authentication and
// access control, shaped like KurrentDB's internal authentication and its
// default ("acl") authorization policy.
//
// Contract:
//
//   - Users live in the node's own log as KurrentDB keeps them: stream
//     $user-<login> holds $UserCreated / $UserUpdated events, JSON
//     {loginName, fullName, groups, hash, salt, disabled}, the last one
//     authoritative; a deleted user's stream is soft-deleted; $users gets one
//     $User event (data: the login name) per user created. The $user- streams
//     carry KurrentDB's ACL ($w, $d, $mw for $admins), and as system streams
//     are readable by admins only.
//   - Passwords are never stored in clear: hash is an Argon2id PHC string
//     (RFC 9106; t=2, m=19 MiB, p=1, 16-byte salt, 32-byte key), not
//     KurrentDB's PBKDF2-SHA1 with 1,000 iterations. At most MaxHashing
//     hashes run at once, so a flood of wrong passwords costs bounded memory.
//     A verified password is remembered (as an HMAC under a per-process key)
//     until the user's stream changes, so a client pays the hash once.
//   - EnsureDefaults creates admin (groups $admins) and ops ($ops), password
//     "changeit", unless their streams exist, as KurrentDB does on first start.
//   - Authenticate answers a Principal or ErrUnauthenticated (unknown,
//     deleted or disabled user, wrong password); ParseBasic reads an
//     Authorization header as KurrentDB's Basic provider does (anything it
//     does not claim is anonymous).
//   - StreamAccess evaluates KurrentDB's legacy stream ACLs: admins pass
//     (except writes and deletes of $all, never allowed); otherwise the roles
//     of the action come from the stream's $acl, else $settings'
//     $userStreamAcl / $systemStreamAcl, else the built-in defaults ($all for
//     user streams, $admins for $-streams); metastream $$X reads and writes
//     are X's $mr and $mw. Anonymous principals get nothing.
package auth

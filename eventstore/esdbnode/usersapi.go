package esdbnode

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/orderstore/orders/eventstore/esdbnode/auth"
)

// This file is a secure node's HTTP user management, on the paths of
// KurrentDB's HTTP API, for administrators (Basic credentials; anything
// else gets 401, as KurrentDB's legacy controllers answer):
//
//	GET    /users/                              {"success":true,"data":[user...]}
//	GET    /users/{login}                       {"success":true,"data":user}
//	POST   /users/                              {"loginName","fullName","groups","password"} → 201
//	POST   /users/{login}/command/reset-password {"newPassword"}
//	POST   /users/{login}/command/enable | disable
//	DELETE /users/{login}
//
// A user is {"loginName","fullName","groups","disabled"}; never a password
// or hash.

// maxUsersBody bounds a users API request body.
const maxUsersBody = 64 << 10

type userJSON struct {
	LoginName string   `json:"loginName"`
	FullName  string   `json:"fullName"`
	Groups    []string `json:"groups"`
	Disabled  bool     `json:"disabled"`
}

func toUserJSON(u auth.User) userJSON {
	g := u.Groups
	if g == nil {
		g = []string{}
	}
	return userJSON{LoginName: u.LoginName, FullName: u.FullName, Groups: g, Disabled: u.Disabled}
}

// registerUsersAPI mounts the users API on a secure node.
func (s *Server) registerUsersAPI() {
	s.mux.HandleFunc("GET /users/{$}", s.admin(s.usersList))
	s.mux.HandleFunc("GET /users/{login}", s.admin(s.usersGet))
	s.mux.HandleFunc("POST /users/{$}", s.admin(s.usersCreate))
	s.mux.HandleFunc("POST /users/{login}/command/{cmd}", s.admin(s.usersCommand))
	s.mux.HandleFunc("DELETE /users/{login}", s.admin(s.usersDelete))
}

// admin lets only administrators through.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := auth.ParseBasic(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="KurrentDB", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "Unauthorized"})
			return
		}
		p, err := s.users.Authenticate(r.Context(), user, pass)
		if err != nil || !p.IsAdmin() {
			if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
				s.cfg.Logger.Debug("esdbnode: users API authentication failed", "err", err)
			}
			writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "Unauthorized"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// usersError answers a store error.
func (s *Server) usersError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, auth.ErrUserNotFound):
		code = http.StatusNotFound
	case errors.Is(err, auth.ErrUserExists):
		code = http.StatusConflict
	case errors.Is(err, auth.ErrInvalidUser):
		code = http.StatusBadRequest
	case r.Context().Err() != nil:
		s.cfg.Logger.Debug("esdbnode: users API request ended by the client", "err", err)
		return
	default:
		s.cfg.Logger.Error("esdbnode: users API", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, map[string]any{"success": false, "error": err.Error()})
}

func (s *Server) usersList(w http.ResponseWriter, r *http.Request) {
	users, err := s.users.List(r.Context())
	if err != nil {
		s.usersError(w, r, err)
		return
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		out = append(out, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": out})
}

func (s *Server) usersGet(w http.ResponseWriter, r *http.Request) {
	u, err := s.users.Get(r.Context(), r.PathValue("login"))
	if err != nil {
		s.usersError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": toUserJSON(u)})
}

// readBody decodes a small JSON body; false (answered 400) if it cannot.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxUsersBody))
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": "bad JSON body: " + err.Error()})
		return false
	}
	return true
}

func (s *Server) usersCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		LoginName string   `json:"loginName"`
		FullName  string   `json:"fullName"`
		Groups    []string `json:"groups"`
		Password  string   `json:"password"`
	}
	if !readBody(w, r, &req) {
		return
	}
	err := s.users.Create(r.Context(), auth.User{LoginName: req.LoginName, FullName: req.FullName, Groups: req.Groups}, req.Password)
	if err != nil {
		s.usersError(w, r, err)
		return
	}
	w.Header().Set("Location", "/users/"+req.LoginName)
	writeJSON(w, http.StatusCreated, map[string]any{"success": true, "loginName": req.LoginName})
}

func (s *Server) usersCommand(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	var err error
	switch r.PathValue("cmd") {
	case "enable":
		err = s.users.SetDisabled(r.Context(), login, false)
	case "disable":
		err = s.users.SetDisabled(r.Context(), login, true)
	case "reset-password":
		var req struct {
			NewPassword string `json:"newPassword"`
		}
		if !readBody(w, r, &req) {
			return
		}
		err = s.users.SetPassword(r.Context(), login, req.NewPassword)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.usersError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "loginName": login})
}

func (s *Server) usersDelete(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	if err := s.users.Delete(r.Context(), login); err != nil {
		s.usersError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "loginName": login})
}

package webui

import "errors"

// ErrBadRequest says a query parameter or path value could not be parsed.
var ErrBadRequest = errors.New("webui: bad request")

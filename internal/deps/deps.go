// Package deps pins modules that packages under construction will import.
// TEMPORARY: removed once those packages import them.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/nats-io/nats.go"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/wneessen/go-mail"
	_ "modernc.org/sqlite"
)

package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"

	mail "github.com/wneessen/go-mail"

	"github.com/orderstore/orders/subscribers"
)

// Transport delivers one message. An error marked with subscribers.Permanent means the
// message can never be delivered as it is; any other error is worth retrying.
type Transport interface {
	Send(ctx context.Context, m Message) error
}

// userAgent is the X-Mailer of every message, so that files and SMTP agree byte for byte.
const userAgent = "orders notify"

// buildMsg turns m into go-mail's message. A missing or malformed address fails with
// ErrInvalidMessage.
func buildMsg(m Message) (*mail.Msg, error) {
	if m.ID == "" {
		return nil, fmt.Errorf("%w: no Message-ID", ErrInvalidMessage)
	}
	msg := mail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("%w: From %q: %v", ErrInvalidMessage, m.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: To %q: %v", ErrInvalidMessage, m.To, err)
	}
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDateWithValue(m.Date)
	msg.Subject(m.Subject)
	msg.SetUserAgent(userAgent)
	if m.OrderID != "" {
		msg.SetGenHeader("X-Order-ID", m.OrderID)
	}
	msg.SetGenHeader("X-Event-ID", m.EventID.String())
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	return msg, nil
}

// Encode returns m as an RFC 5322 message, as SMTPTransport sends it and FileTransport
// stores it.
func Encode(m Message) ([]byte, error) {
	msg, err := buildMsg(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrInvalidMessage, err)
	}
	return buf.Bytes(), nil
}

// Classify marks the permanent delivery failures with subscribers.Permanent and returns the
// others unchanged (nil stays nil):
//
//   - permanent: ErrInvalidMessage (a malformed address can never be delivered), an SMTP 5xx
//     reply at any stage (greeting, MAIL FROM, RCPT TO, DATA), and go-mail's own refusals to
//     build the envelope (no sender, no recipients, 8BITMIME missing);
//   - temporary: everything else, among them connection refused, timeouts, a connection cut in
//     the middle, an SMTP 4xx reply, a failed STARTTLS.
func Classify(err error) error {
	if err == nil || subscribers.IsPermanent(err) {
		return err
	}
	if permanent(err) {
		return subscribers.Permanent(err)
	}
	return err
}

func permanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	if se, ok := errors.AsType[*mail.SendError](err); ok {
		if code := se.ErrorCode(); code != 0 {
			return code >= 500 && code < 600
		}
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			return true
		}
		return false
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		return te.Code >= 500 && te.Code < 600
	}
	return false
}

// NewTransport is the transport serve uses: SMTP when smtpURL is given, else .eml files in
// mailDir.
func NewTransport(smtpURL, mailDir string) (Transport, error) {
	if smtpURL != "" {
		return NewSMTPTransport(SMTPConfig{URL: smtpURL})
	}
	return NewFileTransport(mailDir)
}

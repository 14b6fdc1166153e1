package esdbnode_test

import (
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderstore/orders/eventstore/esdbnode/esdbnodetest"
)

// BenchmarkTLSCost measures what TLS and authentication cost the official
// client: one-event appends and 500-event reads, against an insecure node and
// a secure one (TLS, admin:changeit).
//
//	go test -run XXX -bench TLSCost -benchtime 1000x ./eventstore/esdbnode/
func BenchmarkTLSCost(b *testing.B) {
	modes := []struct {
		name   string
		client func(b *testing.B) *esdb.Client
	}{
		{"insecure", func(b *testing.B) *esdb.Client { return esdbnodetest.Client(b, esdbnodetest.Start(b)) }},
		{"secure", func(b *testing.B) *esdb.Client {
			certs := esdbnodetest.NewCerts(b)
			srv := esdbnodetest.StartSecure(b, certs)
			return esdbnodetest.Dial(b, esdbnodetest.SecureURL(srv, certs, "admin", "changeit"))
		}},
	}
	for _, m := range modes {
		c := m.client(b)
		ctx := b.Context()
		b.Run(m.name+"/append", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := c.AppendToStream(ctx, "bench-append", esdb.AppendToStreamOptions{}, jsonEvent("E", i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		evs := make([]esdb.EventData, 500)
		for i := range evs {
			evs[i] = jsonEvent("E", i)
		}
		if _, err := c.AppendToStream(ctx, "bench-read", esdb.AppendToStreamOptions{}, evs...); err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/read500", func(b *testing.B) {
			for b.Loop() {
				rs, err := c.ReadStream(ctx, "bench-read", esdb.ReadStreamOptions{}, 500)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					if _, err := rs.Recv(); err != nil {
						break
					}
					n++
				}
				rs.Close()
				if n != 500 {
					b.Fatal(fmt.Sprint("read ", n))
				}
			}
		})
	}
}

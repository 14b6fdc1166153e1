# Builds the orders binary; docker-compose.yml runs it against KurrentDB.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/orders ./cmd/orders

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orders /usr/local/bin/orders
WORKDIR /var/lib/orders
ENTRYPOINT ["/usr/local/bin/orders"]
CMD ["serve", "--data", "/var/lib/orders"]

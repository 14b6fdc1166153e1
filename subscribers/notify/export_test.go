package notify

// Decision tells the tests how the sender treats an event type: the notice it causes, or
// none (notice false) when the type is known to cause none; known is false otherwise.
func Decision(eventType string) (kind Kind, notice, known bool) {
	if k, ok := kinds[eventType]; ok {
		return k, true, true
	}
	return "", false, noNotice[eventType]
}

package projections

// SetRebuildSizes makes s's rebuilds read chunks of chunk order events, write the folded
// rows whenever cacheOrders orders are cached, in transactions of txRows rows and (SQLite)
// multi-row inserts of insertRows rows: tiny sizes make a small log cross every boundary
// the large defaults are about.
func SetRebuildSizes(s *Store, chunk, cacheOrders, txRows, insertRows int) {
	s.rebuildSizes = rebuildSizes{chunk: chunk, cacheOrders: cacheOrders, txRows: txRows, insertRows: insertRows}
}

"""Everything that speaks to Solr: the client, collections, cell writes and reads, progress."""

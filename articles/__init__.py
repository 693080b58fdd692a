"""The BRE content site: articles, books, reads and ratings."""

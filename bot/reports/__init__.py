"""Analytics read from the conversation record, and the server-drawn SVG charts."""

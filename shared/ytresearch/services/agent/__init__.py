"""The research agent: tools that act on a session, and the loop that runs them in a reply."""

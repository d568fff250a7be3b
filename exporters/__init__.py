"""Fan-out targets and the queue/retry machinery that wraps every one of them."""

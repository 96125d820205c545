"""Notifications to the community's chats (any apprise URL) through an outbox in the gate database.

`hooks` queues alerts inside a decision's transaction, `due` queues what time makes due, `sender`
delivers through apprise and `worker` does both in the gate app's background.
"""

"""Answers as server tasks (`task`), their events to every open socket (`bus`), and the one
object that holds what this process has running (`hub`)."""

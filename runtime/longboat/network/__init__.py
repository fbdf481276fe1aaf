"""Container networking (issue 5): address management first; drivers to come."""

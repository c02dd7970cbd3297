"""Mining data: repositories, commit records and their file texts."""

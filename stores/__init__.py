"""SQLModel tables and data access for the workbench store. Imports core, never workbench."""

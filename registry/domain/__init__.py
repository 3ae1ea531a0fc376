"""Pure domain logic: entities, versioning rules, statistics. Imports no SQLAlchemy, torch,
Great Expectations or Prefect."""

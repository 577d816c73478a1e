from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "medai_site.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from medai_site.registry import tasks  # noqa: F401  (the registry.validate job kind)
        from medai_site.registry.governance import governance_timeline_register
        from medai_site.registry.shadow_selectors import (
            shadow_release_rows,
            shadow_timeline_entries,
        )

        # Shadow periods on a version's governance timeline and its release record.
        governance_timeline_register(
            key="shadow", entries=shadow_timeline_entries, card_rows=shadow_release_rows
        )

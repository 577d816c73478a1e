from django.apps import AppConfig


def _predictor_tasks() -> list[str]:
    # Every endpoint's task, and any predictor version already registered under another name.
    from drugs.ml.predictors import ENDPOINTS
    from drugs.models import predictor_task
    from drugs.selectors import predictor_versions

    return sorted(
        {predictor_task(e) for e in ENDPOINTS}
        | set(predictor_versions().values_list("task", flat=True))
    )


class DrugsConfig(AppConfig):
    name = "drugs"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from drugs import prior, shadow, tasks, training  # noqa: F401  (job kinds)
        from drugs.artifacts import generator_from_bytes, load_predictor_bytes
        from drugs.demo import demo_drugs_seed
        from drugs.heldout import generator_validate, predictor_validate
        from drugs.ml.predictors import ENDPOINTS
        from drugs.models import GENERATOR_TASK, predictor_task
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.media import media_folder_register
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role
        from medai_site.registry.catalogue import model_kind_register
        from medai_site.registry.shadow import shadow_family_register
        from medai_site.registry.shipped import shipped_model_register

        media_folder_register("drugs/uploads")
        media_folder_register("drugs/datasets")

        model_kind_register(
            label="molecule generator",
            tasks=lambda: [GENERATOR_TASK],
            load=generator_from_bytes,
            validate=generator_validate,
        )
        model_kind_register(
            label="property predictor",
            tasks=lambda: [predictor_task(endpoint) for endpoint in ENDPOINTS],
            load=load_predictor_bytes,
            validate=predictor_validate,
        )

        register_nav_item(
            label="Drug design",
            url_name="drugs:home",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN),
            order=120,
        )

        shadow_family_register(
            label="property predictor", tasks=_predictor_tasks, note=shadow.PREDICTOR_NOTE
        )
        shadow_family_register(
            label="molecule generator",
            tasks=lambda: [GENERATOR_TASK],
            scores_live=False,
            note=shadow.GENERATOR_NOTE,
        )

        register_demo_seeder(demo_drugs_seed, order=50)
        shipped_model_register(
            slug=training.SHIPPED_SLUG,
            task=predictor_task(training.SHIPPED_ENDPOINT),
            label="BBBP property predictor (random forest)",
            build=training.bbbp_build,
            minutes=1,
        )
        # The generator prior is trained by its own command (hours on a CPU, minutes on a GPU),
        # not by a builder here: `shipped_models list/verify` check it, `build` names the command
        # (its README has the whole command lines).
        shipped_model_register(
            slug=prior.PRIOR_SLUG,
            task=GENERATOR_TASK,
            label="SMILES generator prior (GRU, MOSES train)",
            build=None,
            artifact_name=prior.ARTIFACT_NAME,
            command="python -m drugs.ml pretrain",
            minutes=120,
        )

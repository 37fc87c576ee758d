from clickagg.jobs import rollup
rollup.main()

-- One campaign's experiments, best first: parameters, reward and the CD feature.
-- Run with: mariadb -u USER -p maosic < docs/inspect_campaign.sql   (set @request first, or edit)
SET @request = (SELECT MAX(id) FROM requests);
SELECT e.number,
       JSON_EXTRACT(e.params, '$.T') AS T_C,
       JSON_EXTRACT(e.params, '$.C') AS C_mmol_mL,
       e.status,
       ROUND(e.reward, 4) AS reward,
       (SELECT f.value FROM features f
         WHERE f.experiment_id = e.id AND f.name = 'cd_at_exciton_mdeg') AS cd_mdeg
  FROM experiments e
 WHERE e.request_id = @request
 ORDER BY e.reward DESC, e.number;

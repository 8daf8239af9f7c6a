select a.campaign_id, sum(a.amount) as ad_spend, sum(a.impressions) as impressions,
       sum(a.clicks) as clicks
from marketing.ad_spend a
where a.day >= (:period_start)::date and a.day < (:period_end)::date
group by a.campaign_id
